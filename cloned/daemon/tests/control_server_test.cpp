// SPDX-License-Identifier: MIT
// The control socket with a real libuv loop and a real unix socket: answers
// at once, answers later (answer_later), and what a client waiting for a later
// answer hears when the server closes first.
#include <doctest/doctest.h>
#include <unistd.h>
#include <uv.h>

#include <cstdlib>
#include <filesystem>
#include <future>
#include <string>

#include "cloned/daemon/control.h"
#include "cloned/daemon/control_client.h"

namespace {

struct Dir {
  std::string path;
  Dir() {
    char tmpl[] = "/tmp/cloned-test-control-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~Dir() { std::filesystem::remove_all(path); }
};

// A loop with a server; run() turns it until `done` says so (bounded).
struct Server {
  uv_loop_t loop{};
  std::unique_ptr<cloned::ControlServer> control;
  std::string socket;
  explicit Server(const Dir& d) : socket(d.path + "/control.sock") {
    REQUIRE(uv_loop_init(&loop) == 0);
    control = std::make_unique<cloned::ControlServer>(&loop);
  }
  ~Server() {
    control->close();
    uv_run(&loop, UV_RUN_DEFAULT);  // the close callbacks
    control.reset();
    CHECK(uv_loop_close(&loop) == 0);
  }
  void listen() { REQUIRE(control->listen(socket).is_ok()); }
  // Turns the loop until `done()` or 10 s.
  template <typename Done>
  void run_until(Done done) {
    for (int i = 0; i < 1000 && !done(); ++i) {
      uv_run(&loop, UV_RUN_NOWAIT);
      ::usleep(10'000);
    }
    REQUIRE(done());
  }
  std::future<base::Result<std::string>> ask(const std::string& line) {
    return std::async(std::launch::async,
                      [this, line] { return cloned::control_request(socket, line, {::geteuid()}, 15000); });
  }
};

bool ready(const std::future<base::Result<std::string>>& f) {
  return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

}  // namespace

TEST_CASE("a handler's later answer reaches its own client, and only once") {
  Dir d;
  Server s(d);
  std::vector<uint64_t> waiting;
  s.control->add_command("slow", "answers later", [&](const std::string& args, uint64_t request) {
    waiting.push_back(request);
    return cloned::ControlReply::later("nobody answered " + args + ".");
  });
  s.listen();
  auto first = s.ask("slow one");
  s.run_until([&] { return waiting.size() == 1; });
  auto second = s.ask("slow two");
  s.run_until([&] { return waiting.size() == 2; });
  CHECK(waiting[0] != waiting[1]);
  CHECK_FALSE(ready(first));
  s.control->answer_later(waiting[1], cloned::ControlReply{true, "two done\n"});
  s.control->answer_later(waiting[1], cloned::ControlReply{true, "two again\n"});  // nobody waits now
  s.control->answer_later(waiting[1] + 100, cloned::ControlReply{true, "unknown\n"});
  s.run_until([&] { return ready(second); });
  base::Result<std::string> two = second.get();
  REQUIRE_MESSAGE(two, two.status().message());
  CHECK(*two == "two done\n");
  CHECK_FALSE(ready(first));
  s.control->answer_later(waiting[0], cloned::ControlReply::error("one failed"));
  s.run_until([&] { return ready(first); });
  base::Result<std::string> one = first.get();
  REQUIRE_FALSE(one);
  CHECK(one.status().code() == EREMOTEIO);
  CHECK(one.status().message().find("one failed") != std::string::npos);
}

TEST_CASE("a client waiting for a later answer is told the handler's sentence when the server closes") {
  Dir d;
  Server s(d);
  uint64_t request = 0;
  s.control->add_command("slow", "answers later", [&](const std::string&, uint64_t r) {
    request = r;
    return cloned::ControlReply::later("the store did not hold it in time.");
  });
  s.control->add_command("now", "answers at once", [](const std::string& args, uint64_t) {
    return cloned::ControlReply{true, "now " + args + "\n"};
  });
  s.listen();
  auto now = s.ask("now here");
  s.run_until([&] { return ready(now); });
  base::Result<std::string> answered = now.get();
  REQUIRE(answered);
  CHECK(*answered == "now here\n");
  auto slow = s.ask("slow");
  s.run_until([&] { return request != 0; });
  s.control->close();
  s.run_until([&] { return ready(slow); });
  base::Result<std::string> told = slow.get();
  REQUIRE_FALSE(told);
  CHECK(told.status().code() == EREMOTEIO);
  CHECK_MESSAGE(told.status().message().find("the store did not hold it in time.") != std::string::npos,
                told.status().message());
  s.control->answer_later(request, cloned::ControlReply{true, "too late\n"});  // gone: nothing happens
}
