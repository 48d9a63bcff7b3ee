#include "engine/ws/utf8.hpp"

#include <array>
#include <bit>
#include <cstddef>
#include <cstring>

namespace wsgw::ws {
namespace {

// Byte classes: bytes that the DFA treats alike share a class.
enum Class : std::uint8_t {
  kAscii,    // 00..7F
  kCont8x,   // 80..8F
  kCont9x,   // 90..9F
  kContAB,   // A0..BF
  kInvalid,  // C0..C1 (overlong 2-byte leads), F5..FF (beyond U+10FFFF)
  kLead2,    // C2..DF
  kLeadE0,   // E0: next byte A0..BF, else overlong
  kLead3,    // E1..EC, EE..EF
  kLeadED,   // ED: next byte 80..9F, else a surrogate
  kLeadF0,   // F0: next byte 90..BF, else overlong
  kLead4,    // F1..F3
  kLeadF4,   // F4: next byte 80..8F, else beyond U+10FFFF
  kClassCount,
};

// States are row offsets into kTransitions so that a step is one table load.
// kAccept must be 0: Utf8Validator::complete() tests state_ == 0.
enum State : std::uint8_t {
  kAccept = 0 * kClassCount,
  kReject = 1 * kClassCount,
  kNeed1 = 2 * kClassCount,    // one more continuation byte, any
  kNeed2 = 3 * kClassCount,    // two more, any
  kNeed3 = 4 * kClassCount,    // three more, any
  kAfterE0 = 5 * kClassCount,  // then A0..BF, then one more
  kAfterED = 6 * kClassCount,  // then 80..9F, then one more
  kAfterF0 = 7 * kClassCount,  // then 90..BF, then two more
  kAfterF4 = 8 * kClassCount,  // then 80..8F, then two more
  kStateEnd = 9 * kClassCount,
};

constexpr std::array<std::uint8_t, 256> make_classes() {
  std::array<std::uint8_t, 256> c{};
  for (int b = 0; b < 256; ++b) {
    if (b < 0x80) {
      c[b] = kAscii;
    } else if (b < 0x90) {
      c[b] = kCont8x;
    } else if (b < 0xA0) {
      c[b] = kCont9x;
    } else if (b < 0xC0) {
      c[b] = kContAB;
    } else if (b < 0xC2) {
      c[b] = kInvalid;
    } else if (b < 0xE0) {
      c[b] = kLead2;
    } else if (b == 0xE0) {
      c[b] = kLeadE0;
    } else if (b == 0xED) {
      c[b] = kLeadED;
    } else if (b < 0xF0) {
      c[b] = kLead3;
    } else if (b == 0xF0) {
      c[b] = kLeadF0;
    } else if (b < 0xF4) {
      c[b] = kLead4;
    } else if (b == 0xF4) {
      c[b] = kLeadF4;
    } else {
      c[b] = kInvalid;
    }
  }
  return c;
}

constexpr std::array<std::uint8_t, kStateEnd> make_transitions() {
  std::array<std::uint8_t, kStateEnd> t{};
  for (auto& s : t) s = kReject;
  auto set = [&t](State from, Class c, State to) {
    t[static_cast<std::size_t>(from) + static_cast<std::size_t>(c)] = to;
  };
  auto set_any_cont = [&set](State from, State to) {
    set(from, kCont8x, to);
    set(from, kCont9x, to);
    set(from, kContAB, to);
  };
  set(kAccept, kAscii, kAccept);
  set(kAccept, kLead2, kNeed1);
  set(kAccept, kLeadE0, kAfterE0);
  set(kAccept, kLead3, kNeed2);
  set(kAccept, kLeadED, kAfterED);
  set(kAccept, kLeadF0, kAfterF0);
  set(kAccept, kLead4, kNeed3);
  set(kAccept, kLeadF4, kAfterF4);
  set_any_cont(kNeed1, kAccept);
  set_any_cont(kNeed2, kNeed1);
  set_any_cont(kNeed3, kNeed2);
  set(kAfterE0, kContAB, kNeed1);
  set(kAfterED, kCont8x, kNeed1);
  set(kAfterED, kCont9x, kNeed1);
  set(kAfterF0, kCont9x, kNeed2);
  set(kAfterF0, kContAB, kNeed2);
  set(kAfterF4, kCont8x, kNeed2);
  return t;
}

constexpr auto kClasses = make_classes();
constexpr auto kTransitions = make_transitions();

// Returns the first byte in [p, end) that is not ASCII (or end), looking at
// 8 bytes per step.
const unsigned char* skip_ascii(const unsigned char* p, const unsigned char* end) noexcept {
  constexpr std::uint64_t kHighBits = 0x8080808080808080ULL;
  while (end - p >= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, sizeof word);
    if (const std::uint64_t high = word & kHighBits; high != 0) {
      // The lowest-addressed byte with its top bit set is the first non-ASCII one.
      const int bit = std::endian::native == std::endian::little ? std::countr_zero(high)
                                                                 : std::countl_zero(high);
      return p + bit / 8;
    }
    p += 8;
  }
  while (p != end && *p < 0x80) ++p;
  return p;
}

}  // namespace

bool Utf8Validator::feed(std::string_view bytes) noexcept {
  std::uint32_t state = state_;
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const auto* const end = p + bytes.size();
  while (p != end) {
    if (state == kAccept) {
      p = skip_ascii(p, end);
      if (p == end) break;
    }
    state = kTransitions[state + kClasses[*p++]];
    if (state == kReject) break;
  }
  state_ = state;
  return state != kReject;
}

bool is_valid_utf8(std::string_view bytes) noexcept {
  Utf8Validator v;
  return v.feed(bytes) && v.complete();
}

}  // namespace wsgw::ws
