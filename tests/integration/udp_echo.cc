// udp_echo PORT: a UDP echo server for the UDP publishing test (cli_port_udp_test), linked
// statically so it runs in the busybox test image, which has no UDP listener of its own.
// Prints "listening" once bound, then "got: DATA" for each datagram, which it sends back to
// its sender as "echo: DATA".
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: udp_echo PORT\n");
    return 2;
  }
  int s = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[1])));
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  if (s < 0 || ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::perror("udp_echo: bind");
    return 1;
  }
  std::printf("listening\n");
  std::fflush(stdout);
  char buf[2048];
  const char prefix[] = "echo: ";
  for (;;) {
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    ssize_t n = ::recvfrom(s, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &len);
    if (n < 0) continue;
    std::printf("got: %.*s\n", static_cast<int>(n), buf);
    std::fflush(stdout);
    char reply[sizeof prefix + sizeof buf];
    std::memcpy(reply, prefix, sizeof prefix - 1);
    std::memcpy(reply + sizeof prefix - 1, buf, static_cast<size_t>(n));
    ::sendto(s, reply, sizeof prefix - 1 + static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&peer), len);
  }
}
