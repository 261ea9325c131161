// SPDX-License-Identifier: MIT
// The control socket: clonectl asks the running daemon questions over a unix
// stream socket in the runtime directory (control.sock, mode 0600).
//
// Protocol (one request per connection): the client sends one line of text,
// "COMMAND [ARGS]\n", at most kControlRequestBytesMax bytes; the daemon answers
// with a document (TOML for "status") or with one line "error: SENTENCE\n",
// then closes. A command is one table entry: add_command("status", ..., fn).
// A handler that can answer only later (decide: once the state store holds the
// decision) returns ControlReply::later(...) and the owner calls answer_later()
// with the request's number; one that gets no answer within kControlLaterMs is
// told the handler's sentence for that case. close() tells every waiting one.
//
// Who may ask: the peer's credentials (SO_PEERCRED) must be root or the
// daemon's own uid; anyone else is answered "error: ..." and logged, even if
// the socket's mode were loosened. Limits: kControlClientsMax connections at
// once (the next one is told the daemon is busy), kControlTimeoutMs for the
// whole exchange, then the connection is closed.
//
// Threading: loop thread only. Lifetime: close() before the loop ends; the
// handles' memory stays valid until their close callbacks have run, which
// happens inside uv_run, before the owner is destroyed.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"

namespace cloned {

inline constexpr const char* kControlSocketName = "control.sock";
inline constexpr size_t kControlRequestBytesMax = 1024;
inline constexpr size_t kControlClientsMax = 8;
inline constexpr uint64_t kControlTimeoutMs = 2000;
inline constexpr uint64_t kControlLaterMs = 8000;  // a deferred answer's wait, from the request

// A handler's answer: a document, an error sentence (sent as "error: ..."), or
// a promise of one (later): then `text` is the error sentence sent if
// answer_later() does not come within kControlLaterMs or the server closes.
struct ControlReply {
  bool ok = true;
  std::string text;
  bool deferred = false;
  static ControlReply error(std::string why) { return {false, std::move(why)}; }
  static ControlReply later(std::string if_unanswered) { return {false, std::move(if_unanswered), true}; }
};
// `request` numbers the request for answer_later(); unique for the server's life.
using ControlHandler = std::function<ControlReply(const std::string& args, uint64_t request)>;

class ControlServer {
 public:
  explicit ControlServer(uv_loop_t* loop);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // One entry of the command table; `summary` appears in "help".
  void add_command(const std::string& name, const std::string& summary, ControlHandler handler);

  // Replaces a stale socket at `path`, binds, sets mode 0600, listens.
  base::Status listen(const std::string& path);
  // Closes the listener, the timer and every client (a deferred one is told
  // its handler's sentence first); removes the socket file.
  void close();
  // The answer to a request whose handler returned later(); nothing if that
  // client has gone (timed out, hung up) meanwhile.
  void answer_later(uint64_t request, const ControlReply& reply);

  struct Client;

 private:
  static void on_connection(uv_stream_t* server, int status);
  static void on_timer(uv_timer_t* timer);
  void accept_one();
  void on_request(Client* c, const std::string& line);
  void answer(Client* c, const std::string& text);
  void tell_unanswered(Client* c);
  void drop(Client* c);

  struct Command {
    std::string summary;
    ControlHandler handler;
  };

  uv_loop_t* loop_;
  uv_pipe_t listener_{};
  uv_timer_t timer_{};
  bool open_ = false;
  std::string path_;
  std::map<std::string, Command> commands_;
  std::vector<Client*> clients_;  // owned; freed in their close callbacks
  uint64_t refused_peers_ = 0;
  uint64_t requests_ = 0;  // numbers the requests handed to handlers
};

}  // namespace cloned
