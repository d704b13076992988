#include "tests/support/dovecot.hpp"

#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>

namespace imapav::test {
namespace {

struct Ids {
  uid_t uid;
  gid_t gid;
};

Ids nobody() {
  const passwd* pw = getpwnam("nobody");
  if (!pw) throw std::runtime_error("no user 'nobody' for Dovecot's mail processes");
  return {pw->pw_uid, pw->pw_gid};
}

void chownTree(const std::string& path, Ids ids) {
  auto own = [&](const std::string& p) {
    if (::chown(p.c_str(), ids.uid, ids.gid) != 0) throw std::runtime_error("cannot chown " + p);
  };
  own(path);
  for (const auto& e : std::filesystem::recursive_directory_iterator(path)) own(e.path().string());
}

}  // namespace

DovecotFixture::DovecotFixture() {
  port_ = freePort();
  // Dovecot's unprivileged processes must reach the mail under our 0700 temp dir.
  if (::chmod(dir_.path().c_str(), 0755) != 0) throw std::runtime_error("cannot chmod " + dir_.path());
  std::filesystem::create_directories(dir_.file("run"));
  std::filesystem::create_directories(dir_.file("state"));
  std::filesystem::create_directories(dir_.file("mail"));
  writeConfig("ssl = no\n");
}

void DovecotFixture::writeConfig(const std::string& tlsLines) {
  const auto ids = nobody();
  writeFile(dir_.file("dovecot.conf"),
            "protocols = imap\n"
            "listen = 127.0.0.1\n"
            "base_dir = " + dir_.file("run") + "\n"
            "state_dir = " + dir_.file("state") + "\n"
            "log_path = " + dir_.file("dovecot.log") + "\n" + tlsLines +
            "disable_plaintext_auth = no\n"
            "auth_mechanisms = plain login\n"
            "mail_location = maildir:" + dir_.file("mail") + "/%u\n"
            "first_valid_uid = 1\n"
            "passdb {\n  driver = static\n  args = password=" + kPassword + "\n}\n"
            "userdb {\n  driver = static\n  args = uid=" + std::to_string(ids.uid) + " gid=" +
                std::to_string(ids.gid) + " home=" + dir_.file("mail") + "/%u\n}\n"
            "service imap-login {\n  inet_listener imap {\n    address = 127.0.0.1\n    port = " +
                std::to_string(port_) + "\n  }\n  inet_listener imaps {\n    address = 127.0.0.1\n    port = " +
                std::to_string(tlsPort_) + "\n  }\n}\n"
            "service anvil {\n  chroot =\n}\n"
            "service imap-login {\n  chroot =\n}\n");
}

void DovecotFixture::enableTls(const std::string& certFile, const std::string& keyFile) {
  tlsPort_ = freePort();
  writeConfig("ssl = yes\nssl_cert = <" + certFile + "\nssl_key = <" + keyFile + "\n");
}

DovecotFixture::~DovecotFixture() { stop(); }

void DovecotFixture::deliver(const std::string& user, const std::vector<std::string>& messages) {
  const std::string box = dir_.file("mail") + "/" + user;
  for (const char* sub : {"/cur", "/new", "/tmp"}) std::filesystem::create_directories(box + sub);
  for (const auto& m : messages) {
    // Maildir names sort by their leading number, which fixes the UID order.
    ++delivered_;
    const std::string name = std::to_string(1700000000 + delivered_) + ".M" + std::to_string(delivered_) + "P1.imapav";
    writeFile(box + "/new/" + name, m);
  }
  chownTree(dir_.file("mail"), nobody());
}

void DovecotFixture::start() {
  process_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{"/usr/sbin/dovecot", "-F", "-c", dir_.file("dovecot.conf")}, dir_.file("dovecot.out"));
  if (!waitForPort(port_, std::chrono::seconds(20))) {
    throw std::runtime_error("dovecot did not start:\n" + readFile(dir_.file("dovecot.out")) + log());
  }
}

void DovecotFixture::stop() {
  if (process_) {
    process_->stop(SIGTERM, std::chrono::seconds(10));
    process_.reset();
  }
}

std::string DovecotFixture::log() const { return readFile(dir_.file("dovecot.log")); }

}  // namespace imapav::test
