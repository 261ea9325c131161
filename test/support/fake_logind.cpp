// SPDX-License-Identifier: MIT
// A stand-in for systemd-logind on a private bus, for test/e2e/wake_test.cpp:
// it owns org.freedesktop.login1 on the bus at argv[1] and answers the calls
// cloned's logind backend makes (wol/power_logind.cpp). Nothing here can
// suspend anything: Suspend is only written down.
//
//   fake-logind BUS_ADDRESS
//
// It writes one line per event to stdout: "ready", "can_suspend",
// "inhibit taken (WHO: WHY, MODE)", "inhibit released", "suspend". SIGUSR1
// sends PrepareForSleep(true), SIGUSR2 PrepareForSleep(false) (a suspend
// started elsewhere, and its resume). SIGTERM ends it.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr const char* kPath = "/org/freedesktop/login1";
constexpr const char* kManager = "org.freedesktop.login1.Manager";

std::vector<int> g_locks;  // the read ends of the delay locks handed out

void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

int can_suspend(sd_bus_message* m, void*, sd_bus_error*) {
  say("can_suspend");
  return sd_bus_reply_method_return(m, "s", "yes");
}

// The lock is one end of a pipe: the holder closes its end to release it,
// which the other end sees as POLLHUP.
int inhibit(sd_bus_message* m, void*, sd_bus_error* error) {
  const char *what = nullptr, *who = nullptr, *why = nullptr, *mode = nullptr;
  if (int rc = sd_bus_message_read(m, "ssss", &what, &who, &why, &mode); rc < 0) return rc;
  int ends[2];
  if (::pipe2(ends, O_CLOEXEC) != 0) return sd_bus_error_set_errno(error, errno);
  g_locks.push_back(ends[0]);
  say(std::string("inhibit taken (") + who + ": " + why + ", " + mode + ")");
  const int rc = sd_bus_reply_method_return(m, "h", ends[1]);  // sd-bus sends a duplicate
  ::close(ends[1]);
  return rc;
}

int suspend(sd_bus_message* m, void*, sd_bus_error*) {
  say("suspend");
  return sd_bus_reply_method_return(m, "");
}

const sd_bus_vtable kManagerVtable[] = {SD_BUS_VTABLE_START(0),
                                        SD_BUS_METHOD("CanSuspend", "", "s", can_suspend, SD_BUS_VTABLE_UNPRIVILEGED),
                                        SD_BUS_METHOD("Inhibit", "ssss", "h", inhibit, SD_BUS_VTABLE_UNPRIVILEGED),
                                        SD_BUS_METHOD("Suspend", "b", "", suspend, SD_BUS_VTABLE_UNPRIVILEGED),
                                        SD_BUS_SIGNAL("PrepareForSleep", "b", 0),
                                        SD_BUS_VTABLE_END};

int fail(const char* what, int rc) {
  std::fprintf(stderr, "fake-logind: %s: %s\n", what, std::strerror(-rc));
  return 1;
}

// Serves until SIGTERM (0) or until the bus goes away (1).
int serve(sd_bus* bus, int signal_fd) {
  for (;;) {
    for (int rc = 1; rc > 0;) {
      rc = sd_bus_process(bus, nullptr);
      if (rc < 0) return fail("sd_bus_process", rc);
    }
    std::vector<pollfd> fds = {{sd_bus_get_fd(bus), static_cast<short>(sd_bus_get_events(bus)), 0},
                               {signal_fd, POLLIN, 0}};
    for (int lock : g_locks) fds.push_back({lock, 0, 0});  // POLLHUP is always reported
    uint64_t usec = UINT64_MAX;
    sd_bus_get_timeout(bus, &usec);
    if (::poll(fds.data(), fds.size(), usec == UINT64_MAX ? 1000 : 100) < 0 && errno != EINTR)
      return fail("poll", -errno);
    for (size_t i = 2; i < fds.size(); ++i) {
      if ((fds[i].revents & POLLHUP) == 0) continue;
      ::close(fds[i].fd);
      std::erase(g_locks, fds[i].fd);
      say("inhibit released");
    }
    if ((fds[1].revents & POLLIN) == 0) continue;
    signalfd_siginfo info{};
    if (::read(signal_fd, &info, sizeof info) != sizeof info) continue;
    if (info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT) return 0;
    const int going = info.ssi_signo == SIGUSR1;
    if (int rc = sd_bus_emit_signal(bus, kPath, kManager, "PrepareForSleep", "b", going); rc < 0)
      return fail("emitting PrepareForSleep", rc);
    say(going ? "prepare_for_sleep true" : "prepare_for_sleep false");
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fake-logind BUS_ADDRESS\n");
    return 2;
  }
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGUSR1, SIGUSR2, SIGTERM, SIGINT}) sigaddset(&signals, s);
  sigprocmask(SIG_BLOCK, &signals, nullptr);
  const int signal_fd = signalfd(-1, &signals, SFD_CLOEXEC);
  if (signal_fd < 0) return fail("signalfd", -errno);

  // Every way out frees the bus: the sanitizer builds' leak checker reads
  // what is left at exit as a leak (and any report fails the run).
  sd_bus* bus = nullptr;
  int rc = sd_bus_new(&bus);
  if (rc < 0) return fail("sd_bus_new", rc);
  int status = 0;
  if ((rc = sd_bus_set_address(bus, argv[1])) < 0) {
    status = fail("sd_bus_set_address", rc);
  } else if (sd_bus_set_bus_client(bus, 1); (rc = sd_bus_start(bus)) < 0) {
    status = fail("connecting to the bus", rc);
  } else if ((rc = sd_bus_add_object_vtable(bus, nullptr, kPath, kManager, kManagerVtable, nullptr)) < 0) {
    status = fail("sd_bus_add_object_vtable", rc);
  } else if ((rc = sd_bus_request_name(bus, "org.freedesktop.login1", 0)) < 0) {
    status = fail("owning org.freedesktop.login1", rc);
  } else {
    say("ready");
    status = serve(bus, signal_fd);
  }
  for (int lock : g_locks) ::close(lock);
  sd_bus_flush_close_unref(bus);
  ::close(signal_fd);
  return status;
}
