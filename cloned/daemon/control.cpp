// SPDX-License-Identifier: MIT
#include "cloned/daemon/control.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cstring>

#include "base/log.h"
#include "base/units.h"

namespace cloned {

namespace {

constexpr uint64_t kTimerMs = 250;
constexpr uint64_t kWriteGraceMs = 1000;  // after the answer, for a peer that does not read
constexpr int kBacklog = 16;

uint64_t mono_ms() { return base::monotonic_ns() / 1'000'000; }

struct Reply {
  uv_write_t req{};  // req.data points back to this Reply
  std::string text;
  ControlServer::Client* client = nullptr;
};

// What of a client's bytes may appear in a log line or an answer.
std::string printable(const std::string& s, size_t max_bytes) {
  std::string out;
  for (char ch : s.substr(0, max_bytes)) out.push_back(ch >= 0x20 && ch < 0x7f ? ch : '?');
  if (s.size() > max_bytes) out += "...";
  return out;
}

}  // namespace

struct ControlServer::Client {
  uv_pipe_t pipe{};
  ControlServer* server = nullptr;
  char buf[kControlRequestBytesMax] = {};
  size_t have_bytes = 0;
  uint64_t deadline_ms = 0;
  bool answered = false;
  bool closing = false;
  uint64_t request = 0;       // its number, once a handler took it
  bool waiting = false;       // for answer_later()
  std::string if_unanswered;  // the handler's sentence for a wait that ends unanswered
};

ControlServer::ControlServer(uv_loop_t* loop) : loop_(loop) {
  add_command("help", "the commands and what they answer", [this](const std::string&, uint64_t) {
    std::string text;
    for (const auto& [name, cmd] : commands_) text += name + "\t" + cmd.summary + "\n";
    return ControlReply{true, text};
  });
}

ControlServer::~ControlServer() {
  // close() ran and the loop delivered the close callbacks before this.
  assert(clients_.empty());
}

void ControlServer::add_command(const std::string& name, const std::string& summary, ControlHandler handler) {
  assert(!name.empty() && name.find(' ') == std::string::npos);
  commands_[name] = Command{summary, std::move(handler)};
}

base::Status ControlServer::listen(const std::string& path) {
  if (path.size() >= sizeof(sockaddr_un::sun_path))
    return base::Status::error(ENAMETOOLONG, "the control socket path " + path + " is longer than " +
                                                 std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                                                 " bytes; choose a shorter runtime_dir.");
  struct stat st{};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return base::Status::error(EEXIST, path + " exists and is not a socket; remove it or choose another runtime_dir.");
    ::unlink(path.c_str());  // left by a daemon that did not stop cleanly
  }
  uv_pipe_init(loop_, &listener_, 0);
  listener_.data = this;
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
  open_ = true;
  path_ = path;
  int rc = uv_pipe_bind(&listener_, path.c_str());
  // Only root and the daemon's user may connect; peers are checked again on accept.
  if (rc == 0 && ::chmod(path.c_str(), 0600) != 0) rc = -errno;
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), kBacklog, &ControlServer::on_connection);
  if (rc != 0)
    return base::Status::error(-rc, "cannot serve the control socket " + path + ": " + uv_strerror(rc) +
                                        " (is runtime_dir writable by cloned?)");
  uv_timer_start(&timer_, &ControlServer::on_timer, kTimerMs, kTimerMs);
  return base::Status::ok();
}

void ControlServer::close() {
  if (!open_) return;
  open_ = false;
  for (Client* c : std::vector<Client*>(clients_)) {
    if (c->waiting) tell_unanswered(c);  // a unix socket takes the short line at once
    drop(c);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
  struct stat st{};
  if (::lstat(path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path_.c_str());
}

void ControlServer::on_connection(uv_stream_t* server, int status) {
  auto* self = static_cast<ControlServer*>(server->data);
  if (status < 0) {
    LOG_WARN("control socket: accepting failed: %s", uv_strerror(status));
    return;
  }
  self->accept_one();
}

void ControlServer::accept_one() {
  auto* c = new Client;
  c->server = this;
  c->deadline_ms = mono_ms() + kControlTimeoutMs;
  uv_pipe_init(loop_, &c->pipe, 0);
  c->pipe.data = c;
  clients_.push_back(c);
  if (uv_accept(reinterpret_cast<uv_stream_t*>(&listener_), reinterpret_cast<uv_stream_t*>(&c->pipe)) != 0) {
    drop(c);
    return;
  }
  if (clients_.size() > kControlClientsMax) {
    answer(c, "error: the daemon is busy answering " + std::to_string(kControlClientsMax) +
                  " other requests; try again in a few seconds.\n");
    return;
  }
  uv_os_fd_t fd = -1;
  ucred peer{};
  socklen_t len = sizeof peer;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&c->pipe), &fd) != 0 ||
      ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0) {
    answer(c, "error: cannot read the credentials of this connection; refused.\n");
    return;
  }
  const uid_t own = ::geteuid();
  if (peer.uid != 0 && peer.uid != own) {
    ++refused_peers_;
    // The first ten, then at powers of two: a peer retrying in a loop cannot flood the journal.
    const bool log = refused_peers_ <= 10 || (refused_peers_ & (refused_peers_ - 1)) == 0;
    if (log)
      LOG_WARN("control socket: refused a request from uid %u (pid %d): only root and uid %u may ask (%llu refused)",
               static_cast<unsigned>(peer.uid), static_cast<int>(peer.pid), static_cast<unsigned>(own),
               static_cast<unsigned long long>(refused_peers_));
    answer(c, "error: permission denied: uid " + std::to_string(peer.uid) +
                  " may not ask cloned; run clonectl as root (or as uid " + std::to_string(own) + ").\n");
    return;
  }
  auto on_alloc = [](uv_handle_t* h, size_t, uv_buf_t* buf) {
    Client* cl = static_cast<Client*>(h->data);
    *buf = uv_buf_init(cl->buf + cl->have_bytes, static_cast<unsigned>(sizeof cl->buf - cl->have_bytes));
  };
  auto on_read = [](uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
    Client* cl = static_cast<Client*>(s->data);
    ControlServer* self = cl->server;
    if (nread == 0 || cl->answered) return;
    if (nread < 0) {
      // A client that half-closes after its request without a newline still gets an answer.
      if (nread == UV_EOF && cl->have_bytes > 0) {
        uv_read_stop(s);
        self->on_request(cl, std::string(cl->buf, cl->have_bytes));
      } else {
        self->drop(cl);
      }
      return;
    }
    const size_t before = cl->have_bytes;
    cl->have_bytes += static_cast<size_t>(nread);
    const char* nl = static_cast<const char*>(std::memchr(cl->buf + before, '\n', cl->have_bytes - before));
    if (nl != nullptr) {
      uv_read_stop(s);
      std::string line(cl->buf, static_cast<size_t>(nl - cl->buf));
      if (!line.empty() && line.back() == '\r') line.pop_back();
      self->on_request(cl, line);
    } else if (cl->have_bytes == sizeof cl->buf) {
      uv_read_stop(s);
      self->answer(cl, "error: the request is longer than " + std::to_string(kControlRequestBytesMax) +
                           " bytes; a request is one short line such as \"status\".\n");
    }
  };
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->pipe), on_alloc, on_read);
}

void ControlServer::on_request(Client* c, const std::string& line) {
  const bool text = std::all_of(line.begin(), line.end(), [](char ch) { return ch >= 0x20 && ch < 0x7f; });
  if (!text || line.empty()) {
    answer(c, "error: the request is not a line of printable text; send a command such as \"status\".\n");
    return;
  }
  const size_t space = line.find(' ');
  const std::string name = line.substr(0, space);
  const std::string args = space == std::string::npos ? "" : line.substr(space + 1);
  auto it = commands_.find(name);
  if (it == commands_.end()) {
    std::string known;
    for (const auto& entry : commands_) known += (known.empty() ? "" : ", ") + entry.first;
    answer(c, "error: unknown command '" + printable(name, 40) + "'; the commands are: " + known + ".\n");
    return;
  }
  ControlReply reply;
  c->request = ++requests_;
  try {
    reply = it->second.handler(args, c->request);
  } catch (const std::exception& e) {  // nothing unwinds through libuv's frames
    reply = ControlReply::error(std::string("the command failed: ") + e.what());
  }
  if (reply.deferred) {
    c->waiting = true;
    c->if_unanswered = reply.text;
    c->deadline_ms = mono_ms() + kControlLaterMs;
    return;
  }
  answer(c, reply.ok ? reply.text : "error: " + reply.text + "\n");
}

void ControlServer::answer_later(uint64_t request, const ControlReply& reply) {
  assert(!reply.deferred);
  for (Client* c : clients_) {
    if (c->request != request || !c->waiting) continue;
    c->waiting = false;
    answer(c, reply.ok ? reply.text : "error: " + reply.text + "\n");
    return;
  }
}

void ControlServer::tell_unanswered(Client* c) {
  c->waiting = false;
  answer(c, "error: " + c->if_unanswered + "\n");
}

void ControlServer::answer(Client* c, const std::string& text) {
  c->answered = true;
  c->deadline_ms = mono_ms() + kWriteGraceMs;
  auto* r = new Reply;
  r->text = text;
  r->client = c;
  r->req.data = r;
  uv_buf_t buf = uv_buf_init(r->text.data(), static_cast<unsigned>(r->text.size()));
  int rc = uv_write(&r->req, reinterpret_cast<uv_stream_t*>(&c->pipe), &buf, 1, [](uv_write_t* req, int) {
    auto* reply = static_cast<Reply*>(req->data);
    Client* cl = reply->client;
    delete reply;
    cl->server->drop(cl);
  });
  if (rc != 0) {
    delete r;
    drop(c);
  }
}

void ControlServer::drop(Client* c) {
  if (c->closing) return;
  c->closing = true;
  clients_.erase(std::find(clients_.begin(), clients_.end(), c));
  uv_close(reinterpret_cast<uv_handle_t*>(&c->pipe), [](uv_handle_t* h) { delete static_cast<Client*>(h->data); });
}

void ControlServer::on_timer(uv_timer_t* timer) {
  auto* self = static_cast<ControlServer*>(timer->data);
  const uint64_t now = mono_ms();
  for (Client* c : std::vector<Client*>(self->clients_)) {
    if (now < c->deadline_ms) continue;
    if (c->waiting) {
      self->tell_unanswered(c);
    } else if (c->answered) {
      self->drop(c);  // the answer was not taken in time
    } else {
      uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->pipe));
      self->answer(c, "error: no complete request within " + std::to_string(kControlTimeoutMs) + " ms.\n");
    }
  }
}

}  // namespace cloned
