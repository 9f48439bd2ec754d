// Published ports (`run -p`, `-P`): a user-space proxy, like docker-proxy. It listens on the
// host address and port in the host's network namespace and, for each TCP connection (or UDP
// peer), opens the upstream socket inside the xbuild network's namespace, where the container's
// address is reachable, and copies bytes both ways. So a container's address never has to be
// routable from the host. One thread serves every port of a container; it lives in the
// process that runs the container (the CLI of a foreground run, or its monitor) and stops with
// the run.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/fd.h"
#include "core/result.h"
#include "exec/network.h"

namespace xbuild::exec {

class PortProxy {
 public:
  // Binds every mapping (host_ip empty: 0.0.0.0; host_port 0: a free port, written back into
  // `ports`), then serves them, connecting to target_ip:container_port from inside the
  // namespace at `netns_path`. A port that cannot be bound fails the whole start
  // ("Bind for 127.0.0.1:8080 failed: port is already allocated").
  static core::Result<std::unique_ptr<PortProxy>> Start(std::vector<PortMapping>& ports,
                                                        const std::string& target_ip,
                                                        const std::string& netns_path);
  ~PortProxy();  // stops serving and closes every socket
  PortProxy(const PortProxy&) = delete;
  PortProxy& operator=(const PortProxy&) = delete;

 private:
  struct Listener {
    core::UniqueFd fd;
    PortMapping port;
  };
  PortProxy() = default;
  void Serve();

  std::vector<Listener> listeners_;
  std::string target_ip_;
  core::UniqueFd wake_;  // eventfd: written to stop the thread
  std::thread thread_;
};

}  // namespace xbuild::exec
