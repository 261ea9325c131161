// SPDX-License-Identifier: MIT
#include "wol/link_monitor.h"

#include <linux/rtnetlink.h>
#include <netlink/msg.h>
#include <netlink/socket.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cassert>
#include <cerrno>
#include <new>
#include <vector>

#include "base/log.h"
#include "wol/link_netlink.h"

namespace wol {

namespace {
constexpr int kDatagramsPerWakeupMax = 64;  // bounded work per on_readable(); the rest comes next time
constexpr int kDumpTimeoutS = 2;

struct NlCbFree {
  void operator()(nl_cb* cb) const { nl_cb_put(cb); }
};
}  // namespace

struct LinkMonitor::Impl {
  std::string interface;
  Callback callback;
  detail::NlSockPtr events;  // non-blocking, subscribed to link and address groups
  detail::NlSockPtr dumps;   // blocking, for the initial dump and resyncs
  std::unique_ptr<nl_cb, NlCbFree> cb;
  LinkState state;    // what has been reported
  LinkState pending;  // what the messages read so far say; published after each read
  int message_type = 0;
  bool parse_failed = false;
  uint64_t overrun_count = 0;

  static int on_valid(nl_msg* msg, void* arg) noexcept;
  static void on_object(nl_object* object, void* arg) noexcept;
  static int accept_any_sequence(nl_msg*, void*) noexcept { return NL_OK; }
  base::Status connect(const LinkMonitorOptions& options);
  void resync();
  void publish();
};

// Runs inside libnl's receive loop: only updates `pending`, never calls out.
int LinkMonitor::Impl::on_valid(nl_msg* msg, void* arg) noexcept {
  auto* impl = static_cast<Impl*>(arg);
  impl->message_type = nlmsg_hdr(msg)->nlmsg_type;
  // A message type without a libnl parser is not about links or addresses;
  // any other failure may have lost one, and a resync repairs that.
  const int parsed = nl_msg_parse(msg, on_object, impl);
  if (parsed < 0 && parsed != -NLE_MSGTYPE_NOSUPPORT) impl->parse_failed = true;
  return NL_OK;
}

void LinkMonitor::Impl::on_object(nl_object* object, void* arg) noexcept {
  auto* impl = static_cast<Impl*>(arg);
  try {
    detail::apply_object(object, impl->message_type, impl->interface, impl->pending);
  } catch (const std::bad_alloc&) {
    impl->parse_failed = true;  // a resync repairs whatever was missed
  }
}

base::Status LinkMonitor::Impl::connect(const LinkMonitorOptions& options) {
  events.reset(nl_socket_alloc());
  dumps.reset(nl_socket_alloc());
  cb.reset(nl_cb_alloc(NL_CB_DEFAULT));
  if (!events || !dumps || !cb) return base::Status::error(ENOMEM, "cannot allocate netlink sockets");
  // Notifications carry the kernel's sequence numbers, not ours.
  nl_cb_set(cb.get(), NL_CB_SEQ_CHECK, NL_CB_CUSTOM, accept_any_sequence, nullptr);
  nl_cb_set(cb.get(), NL_CB_VALID, NL_CB_CUSTOM, on_valid, this);
  int rc = nl_connect(events.get(), NETLINK_ROUTE);
  if (rc >= 0) rc = nl_socket_add_memberships(events.get(), RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR,
                                              RTNLGRP_IPV6_IFADDR, 0);
  if (rc >= 0) rc = nl_socket_set_nonblocking(events.get());
  if (rc >= 0) rc = nl_socket_set_buffer_size(events.get(), options.receive_buffer_bytes, 0);
  if (rc >= 0) rc = nl_connect(dumps.get(), NETLINK_ROUTE);
  if (rc < 0)
    return base::Status::error(EIO, std::string("cannot open the rtnetlink sockets to watch ") + interface + ": " +
                                        nl_geterror(rc));
  const timeval timeout{kDumpTimeoutS, 0};
  if (::setsockopt(nl_socket_get_fd(dumps.get()), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) != 0)
    return base::Status::from_errno("cannot set a receive timeout on the rtnetlink socket");
  return base::Status::ok();
}

// Replaces `pending` with a fresh dump; on failure keeps what it had and
// says so (the next overrun or change will try again).
void LinkMonitor::Impl::resync() {
  auto dumped = detail::dump_state(dumps.get(), interface);
  if (!dumped) {
    LOG_WARN("link %s: %s", interface.c_str(), dumped.status().message().c_str());
    return;
  }
  pending = std::move(dumped.value());
}

// Reports the difference between what was reported and `pending`.
void LinkMonitor::Impl::publish() {
  if (pending == state) return;
  const LinkState before = std::move(state);
  state = pending;
  std::vector<LinkEvent> out;
  if (!before.present && state.present) out.push_back({LinkEventKind::appeared, interface, ""});
  if (before.carrier && !state.carrier) out.push_back({LinkEventKind::carrier_down, interface, ""});
  for (const std::string& address : before.addresses)
    if (state.addresses.count(address) == 0) out.push_back({LinkEventKind::address_removed, interface, address});
  for (const std::string& address : state.addresses)
    if (before.addresses.count(address) == 0) out.push_back({LinkEventKind::address_added, interface, address});
  if (!before.carrier && state.carrier) out.push_back({LinkEventKind::carrier_up, interface, ""});
  if (before.present && !state.present) out.push_back({LinkEventKind::vanished, interface, ""});
  for (const LinkEvent& event : out) callback(event);
}

const char* to_string(LinkEventKind kind) {
  switch (kind) {
    case LinkEventKind::appeared: return "appeared";
    case LinkEventKind::vanished: return "vanished";
    case LinkEventKind::carrier_up: return "carrier_up";
    case LinkEventKind::carrier_down: return "carrier_down";
    case LinkEventKind::address_added: return "address_added";
    case LinkEventKind::address_removed: return "address_removed";
  }
  return "unknown";
}

base::Result<std::unique_ptr<LinkMonitor>> LinkMonitor::open(const std::string& interface, Callback callback,
                                                             const LinkMonitorOptions& options) {
  assert(callback);
  auto impl = std::make_unique<Impl>();
  impl->interface = interface;
  impl->callback = std::move(callback);
  BASE_TRY(impl->connect(options));
  auto dumped = detail::dump_state(impl->dumps.get(), interface);
  if (!dumped) return dumped.status();
  impl->state = dumped.value();
  impl->pending = impl->state;
  return std::unique_ptr<LinkMonitor>(new LinkMonitor(std::move(impl)));
}

LinkMonitor::LinkMonitor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LinkMonitor::~LinkMonitor() = default;

int LinkMonitor::fd() const { return nl_socket_get_fd(impl_->events.get()); }
const LinkState& LinkMonitor::state() const { return impl_->state; }
const std::string& LinkMonitor::interface() const { return impl_->interface; }
uint64_t LinkMonitor::overrun_count() const { return impl_->overrun_count; }

void LinkMonitor::on_readable() noexcept {
  Impl& impl = *impl_;
  try {
    for (int datagram = 0; datagram < kDatagramsPerWakeupMax; ++datagram) {
      const int got = nl_recvmsgs_report(impl.events.get(), impl.cb.get());
      if (got == -NLE_NOMEM) {  // ENOBUFS: the kernel dropped notifications
        ++impl.overrun_count;
        LOG_NOTICE("link %s: netlink notifications overran; reading the state again", impl.interface.c_str());
        impl.resync();
      } else if (got < 0 && got != -NLE_AGAIN) {
        LOG_WARN("link %s: cannot read netlink notifications: %s", impl.interface.c_str(), nl_geterror(got));
        impl.resync();
        impl.publish();
        return;  // the poll calls again if more is queued
      }
      if (impl.parse_failed) {
        impl.parse_failed = false;
        impl.resync();
      }
      impl.publish();
      if (got == 0 || got == -NLE_AGAIN) return;
    }
  } catch (const std::exception& error) {
    LOG_ERROR("link %s: %s", impl.interface.c_str(), error.what());
  }
}

}  // namespace wol
