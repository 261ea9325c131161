// SPDX-License-Identifier: MIT
// The sysfs backend and the test double.
#include <fcntl.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <fstream>
#include <sstream>

#include "wol/fd.h"
#include "wol/power.h"

namespace wol {
namespace {

bool read_whole(const std::string& path, std::string& out) {
  std::ifstream file(path);
  if (!file) return false;
  std::stringstream content;
  content << file.rdbuf();
  out = content.str();
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return true;
}

bool has_word(const std::string& text, const std::string& word) {
  std::istringstream words(text);
  std::string each;
  while (words >> each)
    if (each == word) return true;
  return false;
}

std::string directory_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

}  // namespace

SysfsPower::SysfsPower(std::string state_path, std::string mode)
    : state_path_(std::move(state_path)), mode_(std::move(mode)) {
  assert(!state_path_.empty());
  assert(!mode_.empty() && mode_.find_first_of(" \n") == std::string::npos);
}

base::Status SysfsPower::can_sleep() {
  std::string offered;
  if (!read_whole(state_path_, offered)) return base::Status::from_errno("cannot read " + state_path_);
  if (!has_word(offered, mode_))
    return base::Status::error(EOPNOTSUPP, "the kernel offers no \"" + mode_ + "\" sleep (" + state_path_ +
                                               " lists: " + (offered.empty() ? "nothing" : offered) + ")");
  if (::access(state_path_.c_str(), W_OK) != 0)
    return base::Status::from_errno("cannot write " + state_path_ +
                                    " (read-only /sys, as under ProtectKernelTunables=? use logind instead)");
  return base::Status::ok();
}

base::Status SysfsPower::sleep() {
  // No O_CREAT: the state file must exist; a typo must not create a file.
  Fd file(::open(state_path_.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
  if (!file.valid()) return base::Status::from_errno("cannot open " + state_path_ + " to suspend");
  // On the real file this write returns only after the resume.
  const ssize_t wrote = ::write(file.get(), mode_.data(), mode_.size());
  if (wrote != static_cast<ssize_t>(mode_.size()))
    return base::Status::from_errno(wrote < 0 ? errno : EIO, "cannot suspend by writing \"" + mode_ + "\" to " +
                                                                 state_path_);
  return base::Status::ok();
}

std::string SysfsPower::mem_sleep() const {
  std::string text;
  return read_whole(directory_of(state_path_) + "/mem_sleep", text) ? text : "";
}

FakePower::FakePower(std::chrono::milliseconds sleep_limit) : sleep_limit_(sleep_limit) {}

base::Status FakePower::can_sleep() {
  std::lock_guard lock(mutex_);
  ++can_sleep_count_;
  calls_.push_back("can_sleep");
  return can_sleep_answer_;
}

base::Status FakePower::sleep() {
  std::unique_lock lock(mutex_);
  ++sleep_count_;
  calls_.push_back("sleep");
  if (!sleep_failure_.is_ok()) return sleep_failure_;
  asleep_ = true;
  const uint64_t generation = wake_generation_;
  changed_.notify_all();
  const bool woken = changed_.wait_for(lock, sleep_limit_, [&] { return wake_generation_ != generation; });
  asleep_ = false;
  changed_.notify_all();
  if (!woken)
    return base::Status::error(ETIMEDOUT, "the simulated sleep was not woken within " +
                                              std::to_string(sleep_limit_.count()) + " ms");
  return base::Status::ok();
}

void FakePower::set_can_sleep(base::Status answer) {
  std::lock_guard lock(mutex_);
  can_sleep_answer_ = std::move(answer);
}

void FakePower::set_sleep_failure(base::Status failure) {
  std::lock_guard lock(mutex_);
  sleep_failure_ = std::move(failure);
}

bool FakePower::wake(const std::string& reason) {
  std::lock_guard lock(mutex_);
  if (!asleep_) return false;
  asleep_ = false;  // awake from now on, even before the sleeping thread runs again
  ++wake_generation_;
  last_wake_reason_ = reason;
  calls_.push_back("wake:" + reason);
  changed_.notify_all();
  return true;
}

std::function<void()> FakePower::waker(std::string reason) {
  return [this, reason = std::move(reason)] { wake(reason); };
}

bool FakePower::wait_until_asleep(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return asleep_; });
}

bool FakePower::asleep() const {
  std::lock_guard lock(mutex_);
  return asleep_;
}

int FakePower::can_sleep_count() const {
  std::lock_guard lock(mutex_);
  return can_sleep_count_;
}

int FakePower::sleep_count() const {
  std::lock_guard lock(mutex_);
  return sleep_count_;
}

std::vector<std::string> FakePower::calls() const {
  std::lock_guard lock(mutex_);
  return calls_;
}

std::string FakePower::last_wake_reason() const {
  std::lock_guard lock(mutex_);
  return last_wake_reason_;
}

}  // namespace wol
