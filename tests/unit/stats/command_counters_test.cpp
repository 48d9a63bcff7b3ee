#include "engine/stats/command_counters.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace wsgw::stats {
namespace {

std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> read(const CommandCounters& c) {
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> out;
  c.for_each([&](std::string_view name, std::uint64_t in, std::uint64_t o) {
    out[std::string(name)] = {in, o};
  });
  return out;
}

TEST(CommandCounters, CountsInAndOutPerCommand) {
  CommandCounters c;
  c.add_in("ECHO");
  c.add_in("ECHO");
  c.add_out("ECHO");
  c.add_out("NOTIFY", 10);
  auto m = read(c);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m["ECHO"], std::make_pair(std::uint64_t{2}, std::uint64_t{1}));
  EXPECT_EQ(m["NOTIFY"], std::make_pair(std::uint64_t{0}, std::uint64_t{10}));
}

TEST(CommandCounters, NamesPastTheLimitCountAsOther) {
  CommandCounters c;
  for (std::size_t i = 0; i < CommandCounters::kSlots + 50; ++i) c.add_in("C" + std::to_string(i));
  c.add_in("C0");  // an early name keeps its own slot
  auto m = read(c);
  EXPECT_EQ(m.size(), CommandCounters::kSlots);
  EXPECT_EQ(m["C0"].first, 2u);
  // kSlots - 1 names got a slot; the other 51 share "_other".
  EXPECT_EQ(m["_other"].first, 51u);
}

}  // namespace
}  // namespace wsgw::stats
