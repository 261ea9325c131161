// SPDX-License-Identifier: MIT
// Which sanitizer this build runs under, as the compiler knows it. A test that
// bounds memory or time asks this, never the environment: ASAN_OPTIONS is set
// by scripts/sanitize.sh but not by a plain `meson test -C build-asan`, and the
// test executable is built with the same -fsanitize flags as the daemon it
// starts (meson's b_sanitize applies to the whole project).
#pragma once

// gcc defines __SANITIZE_*__; clang answers __has_feature (and, from 14 on,
// also defines __SANITIZE_ADDRESS__, but not __SANITIZE_THREAD__ in older ones).
#if defined(__has_feature)
#define CLONED_HAS_FEATURE(x) __has_feature(x)
#else
#define CLONED_HAS_FEATURE(x) 0
#endif

namespace test_support {

#if defined(__SANITIZE_ADDRESS__) || CLONED_HAS_FEATURE(address_sanitizer)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif

#if defined(__SANITIZE_THREAD__) || CLONED_HAS_FEATURE(thread_sanitizer)
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif

}  // namespace test_support

#undef CLONED_HAS_FEATURE
