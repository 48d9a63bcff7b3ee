#include "engine/ws/utf8.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wsgw::ws {
namespace {

// Straightforward RFC 3629 decoder used as the oracle for exhaustive checks.
bool reference_valid(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<std::uint8_t>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    std::uint32_t cp;
    std::uint32_t min;
    if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<std::uint8_t>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

std::string bytes(std::initializer_list<int> list) {
  std::string s;
  for (int b : list) s.push_back(static_cast<char>(b));
  return s;
}

// Validates `s` fed in pieces cut at `cuts` (ascending offsets).
bool valid_in_pieces(std::string_view s, const std::vector<std::size_t>& cuts) {
  Utf8Validator v;
  std::size_t from = 0;
  bool ok = true;
  for (std::size_t cut : cuts) {
    ok = v.feed(s.substr(from, cut - from)) && ok;
    from = cut;
  }
  ok = v.feed(s.substr(from)) && ok;
  return ok && v.complete();
}

TEST(Utf8, EmptyIsValid) {
  EXPECT_TRUE(is_valid_utf8(""));
  Utf8Validator v;
  EXPECT_TRUE(v.feed(""));
  EXPECT_TRUE(v.complete());
}

TEST(Utf8, AcceptsAscii) {
  EXPECT_TRUE(is_valid_utf8("hello, world"));
  EXPECT_TRUE(is_valid_utf8(std::string_view("\0\x01\x7f", 3)));
}

TEST(Utf8, AcceptsKappaSample) {
  // "κόσμε", the classic first test of Markus Kuhn's stress test.
  EXPECT_TRUE(is_valid_utf8("\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5"));
}

TEST(Utf8, AcceptsFirstSequenceOfEachLength) {
  EXPECT_TRUE(is_valid_utf8(bytes({0x00})));
  EXPECT_TRUE(is_valid_utf8(bytes({0xC2, 0x80})));              // U+0080
  EXPECT_TRUE(is_valid_utf8(bytes({0xE0, 0xA0, 0x80})));        // U+0800
  EXPECT_TRUE(is_valid_utf8(bytes({0xF0, 0x90, 0x80, 0x80})));  // U+10000
}

TEST(Utf8, AcceptsLastSequenceOfEachLength) {
  EXPECT_TRUE(is_valid_utf8(bytes({0x7F})));
  EXPECT_TRUE(is_valid_utf8(bytes({0xDF, 0xBF})));              // U+07FF
  EXPECT_TRUE(is_valid_utf8(bytes({0xEF, 0xBF, 0xBF})));        // U+FFFF
  EXPECT_TRUE(is_valid_utf8(bytes({0xF4, 0x8F, 0xBF, 0xBF})));  // U+10FFFF
}

TEST(Utf8, AcceptsOtherBoundaries) {
  EXPECT_TRUE(is_valid_utf8(bytes({0xED, 0x9F, 0xBF})));  // U+D7FF
  EXPECT_TRUE(is_valid_utf8(bytes({0xEE, 0x80, 0x80})));  // U+E000
  EXPECT_TRUE(is_valid_utf8(bytes({0xEF, 0xBF, 0xBD})));  // U+FFFD
  EXPECT_TRUE(is_valid_utf8(bytes({0xEF, 0xBF, 0xBE})));  // U+FFFE: noncharacter, still UTF-8
  EXPECT_TRUE(is_valid_utf8(bytes({0xF3, 0xBF, 0xBF, 0xBF})));
}

TEST(Utf8, RejectsBeyondU10FFFF) {
  EXPECT_FALSE(is_valid_utf8(bytes({0xF4, 0x90, 0x80, 0x80})));  // U+110000
  EXPECT_FALSE(is_valid_utf8(bytes({0xF7, 0xBF, 0xBF, 0xBF})));  // U+1FFFFF
  for (int lead = 0xF5; lead <= 0xFF; ++lead) {
    SCOPED_TRACE(lead);
    EXPECT_FALSE(is_valid_utf8(bytes({lead, 0x80, 0x80, 0x80})));
  }
}

TEST(Utf8, RejectsFiveAndSixByteForms) {
  EXPECT_FALSE(is_valid_utf8(bytes({0xF8, 0x88, 0x80, 0x80, 0x80})));
  EXPECT_FALSE(is_valid_utf8(bytes({0xFC, 0x84, 0x80, 0x80, 0x80, 0x80})));
  EXPECT_FALSE(is_valid_utf8(bytes({0xFB, 0xBF, 0xBF, 0xBF, 0xBF})));
  EXPECT_FALSE(is_valid_utf8(bytes({0xFD, 0xBF, 0xBF, 0xBF, 0xBF, 0xBF})));
}

TEST(Utf8, RejectsEveryLoneContinuationByte) {
  for (int b = 0x80; b <= 0xBF; ++b) {
    SCOPED_TRACE(b);
    EXPECT_FALSE(is_valid_utf8(bytes({b})));
    EXPECT_FALSE(is_valid_utf8(bytes({'a', b, 'a'})));
  }
  EXPECT_FALSE(is_valid_utf8(bytes({0x80, 0xBF, 0x80, 0xBF})));
}

TEST(Utf8, RejectsLonelyStartBytesFollowedBySpace) {
  for (int b = 0xC0; b <= 0xFF; ++b) {
    SCOPED_TRACE(b);
    EXPECT_FALSE(is_valid_utf8(bytes({b, ' '})));
  }
}

TEST(Utf8, RejectsSequencesMissingTheLastByte) {
  const std::vector<std::string> cases = {
      bytes({0xC2}),
      bytes({0xDF}),
      bytes({0xE0, 0xA0}),
      bytes({0xEF, 0xBF}),
      bytes({0xE1, 0x80}),
      bytes({0xF0, 0x90, 0x80}),
      bytes({0xF4, 0x8F, 0xBF}),
      bytes({0xF1, 0x80, 0x80}),
  };
  for (const auto& c : cases) {
    Utf8Validator v;
    EXPECT_TRUE(v.feed(c)) << "a valid prefix must not fail";
    EXPECT_FALSE(v.complete());
    EXPECT_FALSE(is_valid_utf8(c));
    EXPECT_FALSE(is_valid_utf8(c + "a"));
  }
  // All of them concatenated, as in the stress test.
  std::string all;
  for (const auto& c : cases) all += c;
  EXPECT_FALSE(is_valid_utf8(all));
}

TEST(Utf8, RejectsImpossibleBytes) {
  EXPECT_FALSE(is_valid_utf8(bytes({0xFE})));
  EXPECT_FALSE(is_valid_utf8(bytes({0xFF})));
  EXPECT_FALSE(is_valid_utf8(bytes({0xFE, 0xFE, 0xFF, 0xFF})));
}

TEST(Utf8, RejectsOverlongSlash) {
  EXPECT_FALSE(is_valid_utf8(bytes({0xC0, 0xAF})));
  EXPECT_FALSE(is_valid_utf8(bytes({0xE0, 0x80, 0xAF})));
  EXPECT_FALSE(is_valid_utf8(bytes({0xF0, 0x80, 0x80, 0xAF})));
  EXPECT_FALSE(is_valid_utf8(bytes({0xF8, 0x80, 0x80, 0x80, 0xAF})));
  EXPECT_FALSE(is_valid_utf8(bytes({0xFC, 0x80, 0x80, 0x80, 0x80, 0xAF})));
}

TEST(Utf8, RejectsMaximumOverlongs) {
  EXPECT_FALSE(is_valid_utf8(bytes({0xC1, 0xBF})));
  EXPECT_FALSE(is_valid_utf8(bytes({0xE0, 0x9F, 0xBF})));
  EXPECT_FALSE(is_valid_utf8(bytes({0xF0, 0x8F, 0xBF, 0xBF})));
}

TEST(Utf8, RejectsOverlongNul) {
  EXPECT_FALSE(is_valid_utf8(bytes({0xC0, 0x80})));
  EXPECT_FALSE(is_valid_utf8(bytes({0xE0, 0x80, 0x80})));
  EXPECT_FALSE(is_valid_utf8(bytes({0xF0, 0x80, 0x80, 0x80})));
}

TEST(Utf8, RejectsEveryOverlongSecondByte) {
  for (int b = 0x80; b <= 0x9F; ++b) {
    SCOPED_TRACE(b);
    EXPECT_FALSE(is_valid_utf8(bytes({0xE0, b, 0x80})));
  }
  for (int b = 0x80; b <= 0x8F; ++b) {
    SCOPED_TRACE(b);
    EXPECT_FALSE(is_valid_utf8(bytes({0xF0, b, 0x80, 0x80})));
  }
}

TEST(Utf8, RejectsSingleSurrogates) {
  for (int b = 0xA0; b <= 0xBF; ++b) {
    SCOPED_TRACE(b);
    EXPECT_FALSE(is_valid_utf8(bytes({0xED, b, 0x80})));
    EXPECT_FALSE(is_valid_utf8(bytes({0xED, b, 0xBF})));
  }
}

TEST(Utf8, RejectsPairedSurrogates) {
  EXPECT_FALSE(is_valid_utf8(bytes({0xED, 0xA0, 0x80, 0xED, 0xB0, 0x80})));  // U+D800 U+DC00
  EXPECT_FALSE(is_valid_utf8(bytes({0xED, 0xAF, 0xBF, 0xED, 0xBF, 0xBF})));  // U+DBFF U+DFFF
}

TEST(Utf8, FailsFastOnTheFirstBadByte) {
  // Each of these prefixes can never become valid, whatever follows.
  const std::vector<std::string> cases = {
      bytes({0xC0}),       bytes({0xC1}),       bytes({0xF5}),       bytes({0xFF}),
      bytes({0x80}),       bytes({0xE0, 0x9F}), bytes({0xED, 0xA0}), bytes({0xF0, 0x8F}),
      bytes({0xF4, 0x90}), bytes({0xC3, 0x28}),
  };
  for (const auto& c : cases) {
    Utf8Validator v;
    EXPECT_FALSE(v.feed(c)) << testing::PrintToString(c);
  }
}

TEST(Utf8, RejectionIsSticky) {
  Utf8Validator v;
  EXPECT_FALSE(v.feed(bytes({0xFF})));
  EXPECT_FALSE(v.feed("plain ascii"));
  EXPECT_FALSE(v.feed(""));
  EXPECT_FALSE(v.complete());
  v.reset();
  EXPECT_TRUE(v.feed("ok"));
  EXPECT_TRUE(v.complete());
}

TEST(Utf8, ValidatesAcrossEverySplitPoint) {
  const std::string s =
      "a\xC2\x80"
      "b\xE0\xA0\x80\xED\x9F\xBF\xF0\x90\x80\x80\xF4\x8F\xBF\xBF"
      "z";
  ASSERT_TRUE(is_valid_utf8(s));
  for (std::size_t i = 0; i <= s.size(); ++i) {
    for (std::size_t j = i; j <= s.size(); ++j) {
      EXPECT_TRUE(valid_in_pieces(s, {i, j})) << i << "," << j;
    }
  }
  const std::string bad = "ab\xF0\x90\x28\x80";
  for (std::size_t i = 0; i <= bad.size(); ++i) {
    EXPECT_FALSE(valid_in_pieces(bad, {i})) << i;
  }
}

TEST(Utf8, AsciiFastPathFindsBadByteAtEveryPosition) {
  // Also starts at every alignment, since the fast path reads 8 bytes at once.
  for (std::size_t offset = 0; offset < 8; ++offset) {
    for (std::size_t len = 1; len < 40; ++len) {
      for (std::size_t pos = 0; pos < len; ++pos) {
        std::string s(offset + len, 'x');
        s[offset + pos] = static_cast<char>(0xFF);
        ASSERT_FALSE(is_valid_utf8(std::string_view(s).substr(offset)))
            << offset << " " << len << " " << pos;
        // A lead byte followed by ASCII or by nothing is invalid...
        s[offset + pos] = static_cast<char>(0xC3);
        ASSERT_FALSE(is_valid_utf8(std::string_view(s).substr(offset)));
        // ...and valid once its continuation byte follows.
        if (pos + 1 < len) {
          s[offset + pos + 1] = static_cast<char>(0xA9);
          ASSERT_TRUE(is_valid_utf8(std::string_view(s).substr(offset)));
        }
      }
    }
  }
}

TEST(Utf8, LongMixedTextIsValid) {
  std::string s;
  for (int i = 0; i < 1000; ++i) s += "plain ascii run \xE2\x82\xAC \xF0\x9F\x98\x80 ";
  EXPECT_TRUE(is_valid_utf8(s));
  s[s.size() - 3] = static_cast<char>(0xC0);
  EXPECT_FALSE(is_valid_utf8(s));
}

TEST(Utf8, MatchesReferenceOnAllOneAndTwoByteStrings) {
  for (int a = 0; a < 256; ++a) {
    const std::string one = bytes({a});
    ASSERT_EQ(is_valid_utf8(one), reference_valid(one)) << a;
    for (int b = 0; b < 256; ++b) {
      const std::string two = bytes({a, b});
      ASSERT_EQ(is_valid_utf8(two), reference_valid(two)) << a << " " << b;
    }
  }
}

TEST(Utf8, MatchesReferenceOnAllThreeByteStrings) {
  std::string s(3, '\0');
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      for (int c = 0; c < 256; ++c) {
        s[0] = static_cast<char>(a), s[1] = static_cast<char>(b), s[2] = static_cast<char>(c);
        if (is_valid_utf8(s) != reference_valid(s)) {
          FAIL() << a << " " << b << " " << c;
        }
      }
    }
  }
}

TEST(Utf8, MatchesReferenceOnFourByteSequences) {
  const int tails[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF};
  std::string s(4, '\0');
  for (int a = 0xE0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      for (int c : tails) {
        for (int d : tails) {
          s[0] = static_cast<char>(a), s[1] = static_cast<char>(b);
          s[2] = static_cast<char>(c), s[3] = static_cast<char>(d);
          ASSERT_EQ(is_valid_utf8(s), reference_valid(s)) << a << " " << b << " " << c << " " << d;
        }
      }
    }
  }
}

}  // namespace
}  // namespace wsgw::ws
