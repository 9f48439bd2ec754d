#include <gtest/gtest.h>
#include "core/digest.h"
TEST(Digest, Empty) { EXPECT_EQ(xbuild::core::Digest::Of("").Hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"); }
