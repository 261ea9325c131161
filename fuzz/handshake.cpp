// SPDX-License-Identifier: MIT
// Fuzz target: the handshake, the only code an unauthenticated peer reaches.
//
// Input: byte 0 selects the side, the rest is what the peer sends.
//  - even: the clone (ServerHandshake). Byte 1 is the length of the
//    ClientHello taken from what follows; the rest is the ClientFinish.
//  - odd: the original (ClientHandshake). The rest is the ServerHello.
// Checks: no crash or leak on any bytes; a ServerHello reply is sent only
// when it should be and has the protocol's size; a forged finish or server
// proof is refused (nobody can produce one without the pairing secret, and
// the fuzzer does not have it: every success would be a finding).
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_support.h"

namespace {

void fuzz_server(base::ByteSpan in) {
  if (in.empty()) return;
  const size_t hello_bytes = std::min<size_t>(in[0], in.size() - 1);
  const base::ByteSpan hello = in.subspan(1, hello_bytes);
  const base::ByteSpan finish = in.subspan(1 + hello_bytes);
  proto::ServerHandshake server(fuzz::fixed_keys().auth_key, fuzz::fixed_pair_id());
  base::Bytes reply;
  const bool accepted = server.on_client_hello(hello, reply).is_ok();
  FUZZ_CHECK(reply.empty() || reply.size() == proto::kServerHelloBytes);
  if (accepted) FUZZ_CHECK(hello.size() == proto::kClientHelloBytes && !reply.empty());
  // Out of turn (after a refusal) or forged: either way refused.
  FUZZ_CHECK(!server.on_client_finish(finish).is_ok());
  // A second hello is a protocol violation whatever came before.
  base::Bytes again;
  FUZZ_CHECK(!server.on_client_hello(hello, again).is_ok());
}

void fuzz_client(base::ByteSpan server_hello) {
  proto::ClientHandshake client(fuzz::fixed_keys().auth_key, fuzz::fixed_pair_id());
  const base::Bytes hello = client.client_hello();
  FUZZ_CHECK(hello.size() == proto::kClientHelloBytes);
  // The server's MAC covers the client's fresh nonce and key: no fixed bytes
  // can carry a valid proof.
  FUZZ_CHECK(!client.on_server_hello(server_hello).is_ok());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const base::ByteSpan in(data + 1, size - 1);
  if ((data[0] & 1) == 0) fuzz_server(in);
  else fuzz_client(in);
  return 0;
}
