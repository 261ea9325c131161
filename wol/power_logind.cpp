// SPDX-License-Identifier: MIT
// The logind backend over sd-bus. Tested against a stand-in for logind on a
// private bus (e2e-wake, test/support/fake_logind.cpp) and, in the VM suite,
// against the guest's real logind (vm-wake); never the host's (power.h).
#include <fcntl.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <exception>

#include "base/log.h"
#include "wol/power.h"

namespace wol {
namespace {

constexpr const char* kService = "org.freedesktop.login1";
constexpr const char* kPath = "/org/freedesktop/login1";
constexpr const char* kManager = "org.freedesktop.login1.Manager";
constexpr int kProcessRoundsMax = 1024;  // bounded dispatch per wakeup; the poll calls again

// An sd_bus_error freed on scope exit. Zero-initialised is the "no error"
// state (SD_BUS_ERROR_NULL is a C compound literal).
struct BusError {
  sd_bus_error error{};
  ~BusError() { sd_bus_error_free(&error); }
  std::string text(int rc) const {
    if (error.message != nullptr) return error.message;
    return std::string("error ") + std::to_string(-rc);
  }
};

struct MessageUnref {
  void operator()(sd_bus_message* message) const { sd_bus_message_unref(message); }
};
using MessagePtr = std::unique_ptr<sd_bus_message, MessageUnref>;

base::Status bus_failure(int rc, const std::string& what, const BusError& error) {
  return base::Status::error(rc < 0 ? -rc : EIO, what + ": " + error.text(rc));
}

}  // namespace

// The C callbacks: they may not throw through sd-bus's frames.
struct LogindPower::Callbacks {
  static int on_suspend_reply(sd_bus_message* message, void* userdata, sd_bus_error*) noexcept;
  static int on_prepare_for_sleep(sd_bus_message* message, void* userdata, sd_bus_error*) noexcept;
};

base::Status interpret_can_suspend(std::string_view answer) {
  if (answer == "yes") return base::Status::ok();
  if (answer == "challenge")
    return base::Status::error(EACCES, "logind would ask for authorization to suspend; run cloned as root "
                                       "or allow org.freedesktop.login1.suspend in polkit");
  if (answer == "no") return base::Status::error(EPERM, "logind's policy forbids this program to suspend");
  if (answer == "na")
    return base::Status::error(EOPNOTSUPP, "this machine cannot suspend (logind answers \"na\": no suspend "
                                           "support in the hardware or kernel, or it is disabled)");
  return base::Status::error(EPROTO, "logind answered CanSuspend with \"" + std::string(answer) +
                                         "\", which this program does not understand");
}

base::Result<std::unique_ptr<LogindPower>> LogindPower::connect_system_bus() {
  sd_bus* bus = nullptr;
  if (const int rc = sd_bus_open_system(&bus); rc < 0)
    return base::Status::from_errno(-rc, "cannot connect to the system bus to reach logind");
  return std::unique_ptr<LogindPower>(new LogindPower(bus));
}

LogindPower::LogindPower(sd_bus* bus) : bus_(bus) {}

LogindPower::~LogindPower() {
  release_delay_lock();
  sd_bus_slot_unref(signal_slot_);
  sd_bus_slot_unref(suspend_slot_);
  sd_bus_flush_close_unref(bus_);
}

base::Status LogindPower::can_sleep() {
  BusError error;
  sd_bus_message* raw_reply = nullptr;
  const int rc = sd_bus_call_method(bus_, kService, kPath, kManager, "CanSuspend", &error.error, &raw_reply, "");
  MessagePtr reply(raw_reply);
  if (rc < 0) return bus_failure(rc, "cannot ask logind whether the machine can suspend", error);
  const char* answer = nullptr;
  if (const int read = sd_bus_message_read(reply.get(), "s", &answer); read < 0 || answer == nullptr)
    return base::Status::error(EPROTO, "logind's answer to CanSuspend is not a string");
  return interpret_can_suspend(answer);
}

base::Status LogindPower::sleep() {
  sd_bus_slot_unref(suspend_slot_);  // a previous request's slot; its reply came or never will
  suspend_slot_ = nullptr;
  const int interactive = 0;  // D-Bus "b" travels as an int through the varargs
  const int rc = sd_bus_call_method_async(bus_, &suspend_slot_, kService, kPath, kManager, "Suspend",
                                          Callbacks::on_suspend_reply, this, "b", interactive);
  if (rc < 0) return base::Status::from_errno(-rc, "cannot send logind the request to suspend");
  return base::Status::ok();
}

int LogindPower::Callbacks::on_suspend_reply(sd_bus_message* message, void* userdata, sd_bus_error*) noexcept {
  auto* self = static_cast<LogindPower*>(userdata);
  if (!sd_bus_message_is_method_error(message, nullptr)) return 0;
  const sd_bus_error* error = sd_bus_message_get_error(message);
  const int code = sd_bus_message_get_errno(message);
  try {
    const base::Status failure = base::Status::error(
        code > 0 ? code : EIO,
        std::string("logind refused to suspend: ") + (error && error->message ? error->message : "no reason given"));
    LOG_WARN("%s", failure.message().c_str());
    if (self->failure_handler_) self->failure_handler_(failure);
  } catch (const std::exception& caught) {
    LOG_ERROR("logind suspend reply handler: %s", caught.what());
  }
  return 0;
}

base::Status LogindPower::take_delay_lock(const std::string& why) {
  if (holds_delay_lock()) return base::Status::ok();
  BusError error;
  sd_bus_message* raw_reply = nullptr;
  const int rc = sd_bus_call_method(bus_, kService, kPath, kManager, "Inhibit", &error.error, &raw_reply, "ssss",
                                    "sleep", "cloned", why.c_str(), "delay");
  MessagePtr reply(raw_reply);
  if (rc < 0) return bus_failure(rc, "cannot take a sleep delay lock from logind", error);
  int fd = -1;
  if (sd_bus_message_read(reply.get(), "h", &fd) < 0 || fd < 0)
    return base::Status::error(EPROTO, "logind's answer to Inhibit holds no file descriptor");
  // The descriptor belongs to the message; keep our own copy.
  lock_fd_ = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (lock_fd_ < 0) return base::Status::from_errno("cannot keep logind's delay lock");
  return base::Status::ok();
}

void LogindPower::release_delay_lock() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
  lock_fd_ = -1;
}

base::Status LogindPower::watch_prepare_for_sleep(std::function<void(bool)> handler) {
  prepare_handler_ = std::move(handler);
  if (signal_slot_ != nullptr) return base::Status::ok();
  const int rc = sd_bus_match_signal(bus_, &signal_slot_, kService, kPath, kManager, "PrepareForSleep",
                                     Callbacks::on_prepare_for_sleep, this);
  if (rc < 0) return base::Status::from_errno(-rc, "cannot subscribe to logind's PrepareForSleep signal");
  return base::Status::ok();
}

int LogindPower::Callbacks::on_prepare_for_sleep(sd_bus_message* message, void* userdata, sd_bus_error*) noexcept {
  auto* self = static_cast<LogindPower*>(userdata);
  int going_to_sleep = 0;
  if (sd_bus_message_read(message, "b", &going_to_sleep) < 0) {
    LOG_WARN("logind sent a PrepareForSleep signal without its boolean");
    return 0;
  }
  try {
    if (self->prepare_handler_) self->prepare_handler_(going_to_sleep != 0);
  } catch (const std::exception& caught) {
    LOG_ERROR("PrepareForSleep handler: %s", caught.what());
  }
  return 0;
}

void LogindPower::set_sleep_failure_handler(std::function<void(const base::Status&)> handler) {
  failure_handler_ = std::move(handler);
}

int LogindPower::fd() const { return sd_bus_get_fd(bus_); }

int LogindPower::poll_events() const {
  const int events = sd_bus_get_events(bus_);
  return events < 0 ? 0 : events;
}

uint64_t LogindPower::timeout_usec() const {
  uint64_t usec = UINT64_MAX;
  if (sd_bus_get_timeout(bus_, &usec) < 0) return UINT64_MAX;
  return usec;
}

base::Status LogindPower::process() {
  for (int round = 0; round < kProcessRoundsMax; ++round) {
    const int rc = sd_bus_process(bus_, nullptr);
    if (rc < 0) return base::Status::from_errno(-rc, "the connection to logind failed");
    if (rc == 0) return base::Status::ok();
  }
  return base::Status::ok();
}

}  // namespace wol
