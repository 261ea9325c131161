// SPDX-License-Identifier: MIT
// The ethtool messages, parsed back attribute by attribute, and the arming
// policy over a fake NIC. No socket is opened here.
#include <doctest/doctest.h>
#include <linux/ethtool.h>
#include <linux/ethtool_netlink.h>
#include <netlink/attr.h>
#include <netlink/genl/genl.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "wol/arm.h"
#include "wol/ethtool_msg.h"
#include "wol/tests/test_support.h"

using wol_test::contains;

namespace {

constexpr int kFamilyId = 0x1d;  // any number: nothing is sent

struct Parsed {
  nlattr* top[ETHTOOL_A_WOL_MAX + 1] = {};
  nlattr* header[ETHTOOL_A_HEADER_MAX + 1] = {};
  nlattr* modes[ETHTOOL_A_BITSET_MAX + 1] = {};
};

// Parses a request the way the kernel would: genl header, then attributes.
void parse_request(nl_msg* msg, uint8_t command, Parsed& out) {
  nlmsghdr* header = nlmsg_hdr(msg);
  CHECK(header->nlmsg_type == kFamilyId);
  CHECK((header->nlmsg_flags & (NLM_F_REQUEST | NLM_F_ACK)) == (NLM_F_REQUEST | NLM_F_ACK));
  genlmsghdr* genl = genlmsg_hdr(header);
  CHECK(genl->cmd == command);
  CHECK(genl->version == ETHTOOL_GENL_VERSION);
  REQUIRE(nla_parse(out.top, ETHTOOL_A_WOL_MAX, genlmsg_attrdata(genl, 0), genlmsg_attrlen(genl, 0), nullptr) == 0);
  REQUIRE(out.top[ETHTOOL_A_WOL_HEADER] != nullptr);
  CHECK((out.top[ETHTOOL_A_WOL_HEADER]->nla_type & NLA_F_NESTED) != 0);  // strict validation wants it
  REQUIRE(nla_parse_nested(out.header, ETHTOOL_A_HEADER_MAX, out.top[ETHTOOL_A_WOL_HEADER], nullptr) == 0);
  if (out.top[ETHTOOL_A_WOL_MODES] != nullptr)
    REQUIRE(nla_parse_nested(out.modes, ETHTOOL_A_BITSET_MAX, out.top[ETHTOOL_A_WOL_MODES], nullptr) == 0);
}

uint32_t word(nlattr* attribute) {
  REQUIRE(attribute != nullptr);
  REQUIRE(nla_len(attribute) == 4);
  uint32_t value = 0;
  std::memcpy(&value, nla_data(attribute), sizeof value);
  return value;
}

// A WOL_GET_REPLY as the kernel sends it with COMPACT_BITSETS.
wol::detail::NlMsgPtr make_reply(uint8_t command, uint32_t enabled, uint32_t supported, bool nomask) {
  wol::detail::NlMsgPtr msg(nlmsg_alloc());
  genlmsg_put(msg.get(), 0, 0, kFamilyId, 0, 0, command, ETHTOOL_GENL_VERSION);
  nlattr* header = nla_nest_start(msg.get(), ETHTOOL_A_WOL_HEADER);
  nla_put_u32(msg.get(), ETHTOOL_A_HEADER_DEV_INDEX, 2);
  nla_put_string(msg.get(), ETHTOOL_A_HEADER_DEV_NAME, "eth7");
  nla_nest_end(msg.get(), header);
  nlattr* modes = nla_nest_start(msg.get(), ETHTOOL_A_WOL_MODES);
  if (nomask) nla_put_flag(msg.get(), ETHTOOL_A_BITSET_NOMASK);
  nla_put_u32(msg.get(), ETHTOOL_A_BITSET_SIZE, WOL_MODE_COUNT);
  nla_put(msg.get(), ETHTOOL_A_BITSET_VALUE, sizeof enabled, &enabled);
  if (!nomask) nla_put(msg.get(), ETHTOOL_A_BITSET_MASK, sizeof supported, &supported);
  nla_nest_end(msg.get(), modes);
  return msg;
}

// A NIC whose modes live in memory; errors can be injected per operation.
class FakeNic final : public wol::WolBackend {
 public:
  uint32_t supported = wol::kWakeMagic | wol::kWakePhy;
  uint32_t enabled = wol::kWakePhy;
  int get_errno = 0;
  int set_errno = 0;
  bool ignore_set = false;  // a driver that says yes and does nothing
  int set_count = 0;
  std::string wakeup_file;  // when set, set_magic writes power/wakeup there as many drivers do

  const char* name() const override { return "fake"; }
  base::Status get(const std::string&, wol::WakeModes& out) override {
    if (get_errno != 0) return base::Status::from_errno(get_errno, "cannot read the WoL modes");
    out = {supported, enabled};
    return base::Status::ok();
  }
  base::Status set_magic(const std::string&, bool enable) override {
    ++set_count;
    if (set_errno != 0) return base::Status::from_errno(set_errno, "cannot set the WoL modes");
    if (!ignore_set) enabled = enable ? (enabled | wol::kWakeMagic) : (enabled & ~wol::kWakeMagic);
    if (!wakeup_file.empty()) std::ofstream(wakeup_file) << (enable ? "enabled\n" : "disabled\n");
    return base::Status::ok();
  }
};

}  // namespace

TEST_CASE("the WOL_SET message parses back to: device by name, compact bitset touching only the magic bit") {
  for (const bool enable : {true, false}) {
    CAPTURE(enable);
    auto msg = wol::detail::build_wol_set(kFamilyId, "eth7", enable);
    REQUIRE(msg);
    Parsed parsed;
    parse_request(msg.get(), ETHTOOL_MSG_WOL_SET, parsed);
    REQUIRE(parsed.header[ETHTOOL_A_HEADER_DEV_NAME] != nullptr);
    CHECK(std::string(nla_get_string(parsed.header[ETHTOOL_A_HEADER_DEV_NAME])) == "eth7");
    CHECK(parsed.header[ETHTOOL_A_HEADER_DEV_INDEX] == nullptr);
    CHECK(parsed.header[ETHTOOL_A_HEADER_FLAGS] == nullptr);  // no flags we do not need
    REQUIRE(parsed.top[ETHTOOL_A_WOL_MODES] != nullptr);
    CHECK((parsed.top[ETHTOOL_A_WOL_MODES]->nla_type & NLA_F_NESTED) != 0);
    CHECK(parsed.top[ETHTOOL_A_WOL_SOPASS] == nullptr);
    CHECK(parsed.modes[ETHTOOL_A_BITSET_NOMASK] == nullptr);  // value/mask: keep the other modes
    CHECK(parsed.modes[ETHTOOL_A_BITSET_BITS] == nullptr);
    CHECK(nla_get_u32(parsed.modes[ETHTOOL_A_BITSET_SIZE]) == WOL_MODE_COUNT);
    CHECK(word(parsed.modes[ETHTOOL_A_BITSET_MASK]) == WAKE_MAGIC);
    CHECK(word(parsed.modes[ETHTOOL_A_BITSET_VALUE]) == (enable ? WAKE_MAGIC : 0u));
  }
}

TEST_CASE("the WOL_GET message asks for compact bitsets and carries no modes") {
  auto msg = wol::detail::build_wol_get(kFamilyId, "enp0s31f6");
  REQUIRE(msg);
  Parsed parsed;
  parse_request(msg.get(), ETHTOOL_MSG_WOL_GET, parsed);
  CHECK(std::string(nla_get_string(parsed.header[ETHTOOL_A_HEADER_DEV_NAME])) == "enp0s31f6");
  REQUIRE(parsed.header[ETHTOOL_A_HEADER_FLAGS] != nullptr);
  CHECK(nla_get_u32(parsed.header[ETHTOOL_A_HEADER_FLAGS]) == ETHTOOL_FLAG_COMPACT_BITSETS);
  CHECK(parsed.top[ETHTOOL_A_WOL_MODES] == nullptr);
}

TEST_CASE("messages are not built for an empty or over-long interface name") {
  CHECK_FALSE(wol::detail::build_wol_set(kFamilyId, "", true));
  CHECK_FALSE(wol::detail::build_wol_set(kFamilyId, "sixteen-chars-xx", true));
  CHECK_FALSE(wol::detail::build_wol_get(kFamilyId, "sixteen-chars-xx"));
  CHECK(wol::detail::build_wol_get(kFamilyId, "fifteen-chars-x"));
}

TEST_CASE("a compact WOL_GET reply yields enabled (value) and supported (mask); other shapes are refused") {
  wol::WakeModes modes;
  auto reply = make_reply(ETHTOOL_MSG_WOL_GET_REPLY, WAKE_MAGIC | WAKE_PHY, WAKE_MAGIC | WAKE_PHY | WAKE_BCAST, false);
  REQUIRE(wol::detail::parse_wol_reply(nlmsg_hdr(reply.get()), modes));
  CHECK(modes.enabled == (wol::kWakeMagic | wol::kWakePhy));
  CHECK(modes.supported == (wol::kWakeMagic | wol::kWakePhy | wol::kWakeBroadcast));

  CHECK_FALSE(wol::detail::parse_wol_reply(nlmsg_hdr(make_reply(ETHTOOL_MSG_WOL_GET_REPLY, 0, 0, true).get()), modes));
  CHECK_FALSE(wol::detail::parse_wol_reply(nlmsg_hdr(make_reply(ETHTOOL_MSG_LINKINFO_GET_REPLY, 0, 0, false).get()),
                                           modes));
  CHECK_FALSE(wol::detail::parse_wol_reply(nullptr, modes));
}

TEST_CASE("wake modes are described with ethtool's names") {
  CHECK(wol::describe_wake_modes(0) == "none");
  CHECK(wol::describe_wake_modes(wol::kWakeMagic | wol::kWakePhy) == "phy, magic");
  CHECK(wol::describe_wake_modes(1u << 9) == "unknown bits");
  CHECK(std::string(wol::to_string(wol::ArmState::no_permission)) == "no_permission");
}

TEST_CASE("arming turns on only the magic bit, reads it back, and reports power/wakeup") {
  wol_test::TempDir sysfs;
  REQUIRE(sysfs.ok());
  sysfs.write("class/net/eth7/device/power/wakeup", "enabled\n");
  FakeNic nic;
  wol::ArmStatus status = wol::arm_with(nic, "eth7", true, sysfs.path());
  CHECK(status.state == wol::ArmState::armed);
  CHECK(nic.set_count == 1);
  CHECK(status.enabled_modes == (wol::kWakeMagic | wol::kWakePhy));  // phy kept
  CHECK(status.supported_modes == (wol::kWakeMagic | wol::kWakePhy));
  CHECK(status.power_wakeup == "enabled");
  CHECK(status.method == "fake");
  CHECK(contains(status.reason, "eth7 wakes on a magic packet"));
  CHECK(contains(status.reason, "power/wakeup is enabled"));

  status = wol::arm_with(nic, "eth7", true, sysfs.path());  // already armed: nothing to change
  CHECK(status.state == wol::ArmState::armed);
  CHECK(nic.set_count == 1);

  status = wol::arm_with(nic, "eth7", false, sysfs.path());
  CHECK(status.state == wol::ArmState::disarmed);
  CHECK(status.enabled_modes == wol::kWakePhy);
  CHECK(wol::query_with(nic, "eth7", sysfs.path()).state == wol::ArmState::disarmed);
  CHECK(nic.set_count == 2);
}

TEST_CASE("power/wakeup disabled or absent is said in the reason; the state stays armed") {
  wol_test::TempDir sysfs;
  REQUIRE(sysfs.ok());
  sysfs.write("class/net/eth7/device/power/wakeup", "disabled\n");
  FakeNic nic;
  wol::ArmStatus status = wol::arm_with(nic, "eth7", true, sysfs.path());
  CHECK(status.state == wol::ArmState::armed);
  CHECK(status.power_wakeup == "disabled");
  CHECK(contains(status.reason, "write enabled to " + sysfs.path() + "/class/net/eth7/device/power/wakeup"));

  CHECK(wol::read_power_wakeup(sysfs.path(), "eth8").empty());
  status = wol::arm_with(nic, "eth8", true, sysfs.path());
  CHECK(status.power_wakeup.empty());
  CHECK(contains(status.reason, "no power/wakeup file"));
}

// Found in review: power/wakeup was read before arming; a driver that sets
// it with its WoL left a stale "disabled", and the clone never slept.
TEST_CASE("power/wakeup is read again after arming: a driver that enables it with WoL counts as enabled") {
  wol_test::TempDir sysfs;
  REQUIRE(sysfs.ok());
  sysfs.write("class/net/eth7/device/power/wakeup", "disabled\n");
  FakeNic nic;
  nic.wakeup_file = sysfs.path() + "/class/net/eth7/device/power/wakeup";
  wol::ArmStatus status = wol::arm_with(nic, "eth7", true, sysfs.path());
  CHECK(status.state == wol::ArmState::armed);
  CHECK(status.power_wakeup == "enabled");
  CHECK(contains(status.reason, "may wake the machine"));
}

TEST_CASE("a NIC without magic wake, a driver without WoL, and missing rights map to clear states") {
  wol_test::TempDir sysfs;
  REQUIRE(sysfs.ok());
  FakeNic nic;
  nic.supported = wol::kWakePhy | wol::kWakeUnicast;
  wol::ArmStatus status = wol::arm_with(nic, "eth7", true, sysfs.path());
  CHECK(status.state == wol::ArmState::unsupported);
  CHECK(nic.set_count == 0);
  CHECK(contains(status.reason, "supports: phy, ucast"));

  FakeNic no_wol;
  no_wol.get_errno = EOPNOTSUPP;
  status = wol::arm_with(no_wol, "veth0", true, sysfs.path());
  CHECK(status.state == wol::ArmState::unsupported);
  CHECK(contains(status.reason, "no Wake-on-LAN support"));

  FakeNic locked;
  locked.set_errno = EPERM;
  status = wol::arm_with(locked, "eth7", true, sysfs.path());
  CHECK(status.state == wol::ArmState::no_permission);
  CHECK(contains(status.reason, "CAP_NET_ADMIN"));

  FakeNic gone;
  gone.get_errno = ENODEV;
  status = wol::arm_with(gone, "eth9", true, sysfs.path());
  CHECK(status.state == wol::ArmState::error);
  CHECK(contains(status.reason, "no network interface named eth9"));

  FakeNic liar;
  liar.ignore_set = true;
  status = wol::arm_with(liar, "eth7", true, sysfs.path());
  CHECK(status.state == wol::ArmState::error);
  CHECK(contains(status.reason, "still off"));
}

TEST_CASE("the NIC's driver is the name its device's driver link points to") {
  wol_test::TempDir sysfs;
  REQUIRE(sysfs.ok());
  sysfs.write("class/net/ens3/device/vendor", "0x1af4\n");
  std::filesystem::create_directory_symlink("../../../bus/virtio/drivers/virtio_net",
                                            sysfs.path() + "/class/net/ens3/device/driver");
  CHECK(wol::read_nic_driver(sysfs.path(), "ens3") == "virtio_net");
  CHECK(wol::read_nic_driver(sysfs.path(), "veth0").empty());  // no device
  CHECK(wol::read_nic_driver(sysfs.path() + "/nowhere", "ens3").empty());
}
