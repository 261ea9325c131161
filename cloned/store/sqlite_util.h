// SPDX-License-Identifier: MIT
// Small RAII helpers over the sqlite3 C API (internal to the store).
#pragma once

#include <sqlite3.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace store::detail {

// errno-style code for a sqlite result code, for callers that branch on it.
inline int errno_of(int sqlite_rc) {
  switch (sqlite_rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return EBUSY;
    case SQLITE_READONLY: return EROFS;
    case SQLITE_PERM:
    case SQLITE_AUTH: return EACCES;
    case SQLITE_FULL: return ENOSPC;
    case SQLITE_CANTOPEN: return ENOENT;
    case SQLITE_NOMEM: return ENOMEM;
    default: return EIO;
  }
}

// A prepared statement kept for the life of the connection. Each use binds,
// steps, and resets (Use's destructor), so no statement stays active between
// calls and holds a read transaction open.
class Statement {
 public:
  Statement() = default;
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  int prepare(sqlite3* db, std::string_view sql) {
    return sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
  }
  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// One use of a Statement: binds by 1-based index, steps, resets on scope exit.
class Use {
 public:
  explicit Use(Statement& statement) : stmt_(statement.get()) {}
  ~Use() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Use(const Use&) = delete;
  Use& operator=(const Use&) = delete;

  // Unsigned values are stored as their two's-complement int64 bit pattern;
  // they read back exactly with u64().
  void bind(int index, uint64_t value) {
    sqlite3_bind_int64(stmt_, index, static_cast<sqlite3_int64>(value));
  }
  void bind(int index, int64_t value) { sqlite3_bind_int64(stmt_, index, value); }
  void bind(int index, std::string_view text) {
    sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  }
  void bind_blob(int index, const void* data, size_t size) {
    sqlite3_bind_blob(stmt_, index, data, static_cast<int>(size), SQLITE_TRANSIENT);
  }
  int step() { return sqlite3_step(stmt_); }

  uint64_t u64(int column) const {
    return static_cast<uint64_t>(sqlite3_column_int64(stmt_, column));
  }
  int64_t i64(int column) const { return sqlite3_column_int64(stmt_, column); }
  std::string text(int column) const {
    const unsigned char* p = sqlite3_column_text(stmt_, column);
    int n = sqlite3_column_bytes(stmt_, column);
    return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p),
                                                      static_cast<size_t>(n));
  }
  std::string_view blob(int column) const {
    const void* p = sqlite3_column_blob(stmt_, column);
    int n = sqlite3_column_bytes(stmt_, column);
    return p == nullptr ? std::string_view() : std::string_view(static_cast<const char*>(p),
                                                                static_cast<size_t>(n));
  }

 private:
  sqlite3_stmt* stmt_;
};

}  // namespace store::detail
