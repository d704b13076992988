#include "shared/metrics/http_exporter.hpp"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/ThreadPool.h>
#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace imapav::metrics {

namespace {

using Poco::Net::HTTPResponse;

constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

class MetricsHandler final : public Poco::Net::HTTPRequestHandler {
 public:
  explicit MetricsHandler(const Registry& registry) : registry_(registry) {}

  void handleRequest(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp) override {
    const auto& uri = req.getURI();
    const bool head = req.getMethod() == Poco::Net::HTTPRequest::HTTP_HEAD;
    if (uri != "/metrics" && uri.rfind("/metrics?", 0) != 0) return plain(resp, HTTPResponse::HTTP_NOT_FOUND, "not found: try /metrics\n", head);
    if (!head && req.getMethod() != Poco::Net::HTTPRequest::HTTP_GET) {
      resp.set("Allow", "GET, HEAD");
      return plain(resp, HTTPResponse::HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", head);
    }
    std::string body;
    try {
      body = registry_.render();
    } catch (const std::exception& e) {
      return plain(resp, HTTPResponse::HTTP_INTERNAL_SERVER_ERROR, std::string("cannot render metrics: ") + e.what() + "\n", head);
    }
    resp.setStatus(HTTPResponse::HTTP_OK);
    resp.setContentType(kContentType);
    resp.setContentLength64(static_cast<Poco::Int64>(body.size()));
    if (head) resp.send();
    else resp.sendBuffer(body.data(), body.size());
  }

 private:
  static void plain(Poco::Net::HTTPServerResponse& resp, HTTPResponse::HTTPStatus status, const std::string& text, bool head) {
    resp.setStatus(status);
    resp.setContentType("text/plain; charset=utf-8");
    resp.setContentLength64(static_cast<Poco::Int64>(text.size()));
    if (head) resp.send();
    else resp.sendBuffer(text.data(), text.size());
  }

  const Registry& registry_;
};

class Factory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit Factory(const Registry& registry) : registry_(registry) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
    return new MetricsHandler(registry_);
  }

 private:
  const Registry& registry_;
};

// Fields of /proc/self/stat after the command name (which may hold spaces and parentheses).
std::vector<std::string> procStatFields() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  std::getline(in, line);
  const auto close = line.rfind(')');
  std::vector<std::string> out;
  if (close == std::string::npos) return out;
  std::istringstream rest(line.substr(close + 1));
  for (std::string f; rest >> f;) out.push_back(f);
  return out;  // out[0] is field 3 (state)
}

double bootTime() {
  std::ifstream in("/proc/stat");
  for (std::string key; in >> key;) {
    if (key == "btime") {
      double v = 0;
      in >> v;
      return v;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

double openFds() {
  DIR* d = opendir("/proc/self/fd");
  if (!d) return 0;
  double n = 0;
  while (const dirent* e = readdir(d))
    if (e->d_name[0] != '.') ++n;
  closedir(d);
  return n - 1;  // the directory stream's own descriptor
}

}  // namespace

struct HttpExporter::Impl {
  Poco::ThreadPool pool{1, 2};
  std::unique_ptr<Poco::Net::HTTPServer> server;
  std::uint16_t port = 0;
};

HttpExporter::HttpExporter(const Registry& registry, const config::HostPort& listen) : impl_(std::make_unique<Impl>()) {
  try {
    Poco::Net::ServerSocket socket;
    // SO_REUSEADDR for a quick restart, but not SO_REUSEPORT (Poco sets both by default):
    // a second daemon on the same port must fail, not share it.
    socket.bind(Poco::Net::SocketAddress(listen.host, listen.port), true, false);
    socket.listen(16);
    impl_->port = socket.address().port();
    auto params = Poco::makeAuto<Poco::Net::HTTPServerParams>();
    params->setMaxThreads(2);
    params->setMaxQueued(16);
    params->setTimeout(Poco::Timespan(5, 0));
    params->setKeepAlive(true);
    params->setKeepAliveTimeout(Poco::Timespan(5, 0));
    params->setMaxKeepAliveRequests(100);
    params->setServerName("imapav");
    impl_->server = std::make_unique<Poco::Net::HTTPServer>(Poco::makeShared<Factory>(registry), impl_->pool, socket, params);
    impl_->server->start();
  } catch (const Poco::Exception& e) {
    throw std::runtime_error("metrics.listen " + listen.host + ":" + std::to_string(listen.port) + ": " + e.displayText());
  }
}

HttpExporter::~HttpExporter() {
  if (impl_->server) impl_->server->stopAll(true);
  impl_->pool.joinAll();
}

std::uint16_t HttpExporter::port() const { return impl_->port; }

void addProcessMetrics(Registry& registry) {
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  const double boot = bootTime();
  registry.addCollector([ticks, page, boot](Exposition& e) {
    const auto f = procStatFields();
    auto field = [&](std::size_t n) { return n - 3 < f.size() ? std::stod(f[n - 3]) : 0.0; };  // n: proc(5) field number
    e.family("process_cpu_seconds_total", "User and system CPU time spent, in seconds.", Type::Counter);
    e.sample("process_cpu_seconds_total", {}, (field(14) + field(15)) / ticks);
    e.family("process_resident_memory_bytes", "Resident memory size in bytes.", Type::Gauge);
    e.sample("process_resident_memory_bytes", {}, field(24) * page);
    e.family("process_virtual_memory_bytes", "Virtual memory size in bytes.", Type::Gauge);
    e.sample("process_virtual_memory_bytes", {}, field(23));
    e.family("process_threads", "Number of threads.", Type::Gauge);
    e.sample("process_threads", {}, field(20));
    e.family("process_start_time_seconds", "Start time of the process since the Unix epoch, in seconds.", Type::Gauge);
    e.sample("process_start_time_seconds", {}, boot + field(22) / ticks);
    e.family("process_open_fds", "Number of open file descriptors.", Type::Gauge);
    e.sample("process_open_fds", {}, openFds());
    rlimit lim{};
    e.family("process_max_fds", "Maximum number of open file descriptors.", Type::Gauge);
    e.sample("process_max_fds", {}, getrlimit(RLIMIT_NOFILE, &lim) == 0 ? static_cast<double>(lim.rlim_cur) : 0.0);
  });
}

}  // namespace imapav::metrics
