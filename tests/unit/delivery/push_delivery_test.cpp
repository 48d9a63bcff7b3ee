#include "engine/delivery/push_delivery.hpp"

#include <gtest/gtest.h>

#include <map>

#include "tests/unit/support/fake_bus.hpp"
#include "tests/unit/support/fake_host.hpp"

namespace wsgw::delivery {
namespace {

using bus::InterestKind;
using protocol::ControlMessage;
using testing::FakeBus;
using testing::FakeHost;
using Verb = ControlMessage::Verb;

ControlMessage control(Verb verb, std::string user, std::string conn = {}, std::string group = {}) {
  ControlMessage c{};
  c.verb = verb;
  c.user = std::move(user);
  c.conn = std::move(conn);
  c.group = std::move(group);
  c.reason = "because";
  return c;
}

Delivery push(Delivery::Kind kind, std::string key, std::string text, std::uint64_t number = 0) {
  Delivery d;
  d.kind = kind;
  d.key = std::move(key);
  d.number = number;
  d.command = "NEWS";
  d.frame = ws::encode_frame(ws::Opcode::text, text);
  return d;
}

std::uint64_t out_count(const stats::CommandCounters& c, std::string_view command) {
  std::uint64_t n = 0;
  c.for_each([&](std::string_view name, std::uint64_t, std::uint64_t out) {
    if (name == command) n = out;
  });
  return n;
}

class PushDeliveryTest : public ::testing::Test {
 protected:
  FakeBus fake;
  bus::Bus* bus = &fake;
  FakeHost host;
  stats::CommandCounters counters;
  Groups groups{bus, 0};
  PushDelivery delivery{host.sessions, groups, counters, bus, 0};
};

TEST_F(PushDeliveryTest, AUserPushReachesEveryConnectionOfThatUserOnly) {
  auto a1 = host.open(1, "alice");
  auto a2 = host.open(2, "alice");
  auto b = host.open(3, "bob");
  delivery.deliver(push(Delivery::Kind::user, "alice", "hi alice"));
  host.flush();
  EXPECT_EQ(a1->texts(), std::vector<std::string>{"hi alice"});
  EXPECT_EQ(a2->texts(), std::vector<std::string>{"hi alice"});
  EXPECT_TRUE(b->texts().empty());
  EXPECT_EQ(delivery.stats().delivered.load(), 2u);
  EXPECT_EQ(out_count(counters, "NEWS"), 2u);
}

TEST_F(PushDeliveryTest, APushToNobodyHereCountsNothing) {
  auto b = host.open(3, "bob");
  delivery.deliver(push(Delivery::Kind::user, "carol", "x"));
  delivery.deliver(push(Delivery::Kind::group, "empty", "x"));
  delivery.deliver(push(Delivery::Kind::conn, "", "x", 99));
  host.flush();
  EXPECT_TRUE(b->texts().empty());
  EXPECT_EQ(delivery.stats().delivered.load(), 0u);
  EXPECT_EQ(out_count(counters, "NEWS"), 0u);
}

TEST_F(PushDeliveryTest, GroupConnectionAndAllPushesFindTheirTargets) {
  auto a = host.open(1, "alice");
  auto b = host.open(2, "bob");
  auto c = host.open(3, "carol");
  groups.join(*a->session, "room");
  groups.join(*c->session, "room");
  delivery.deliver(push(Delivery::Kind::group, "room", "to room"));
  delivery.deliver(push(Delivery::Kind::conn, "", "to bob", 2));
  delivery.deliver(push(Delivery::Kind::all, "", "to all"));
  host.flush();
  EXPECT_EQ(a->texts(), (std::vector<std::string>{"to room", "to all"}));
  EXPECT_EQ(b->texts(), (std::vector<std::string>{"to bob", "to all"}));
  EXPECT_EQ(c->texts(), (std::vector<std::string>{"to room", "to all"}));
  EXPECT_EQ(delivery.stats().delivered.load(), 6u);
}

TEST_F(PushDeliveryTest, AClosingConnectionGetsNoPushByItsId) {
  auto a = host.open(1, "alice", /*index=*/false);
  // Indexed by sequence only, as a connection evicted from its user's list.
  host.sessions.add("other", 1, a->session.get(), 0, nullptr);
  a->session->close(protocol::Close::normal);
  host.flush();
  a->frames();  // the close frame
  delivery.deliver(push(Delivery::Kind::conn, "", "late", 1));
  host.flush();
  EXPECT_TRUE(a->texts().empty());
  EXPECT_EQ(delivery.stats().delivered.load(), 0u);
}

TEST_F(PushDeliveryTest, ASlowConsumerIsClosedAndTheOthersStillReceive) {
  host.lim.send_queue_limit_bytes = 64;
  auto a = host.open(1, "alice");
  auto b = host.open(2, "bob");
  groups.join(*b->session, "room");
  std::string big(40, 'x');  // a 42-byte frame
  delivery.deliver(push(Delivery::Kind::all, "", big));
  host.flush();
  EXPECT_EQ(a->texts(), std::vector<std::string>{big});
  EXPECT_EQ(b->texts(), std::vector<std::string>{big});
  // bob reads nothing more: his second unwritten frame passes the limit.
  delivery.deliver(push(Delivery::Kind::group, "room", big));
  delivery.deliver(push(Delivery::Kind::group, "room", big));
  EXPECT_FALSE(b->session->is_open());
  EXPECT_EQ(b->session->close_code(), 4002);
  delivery.deliver(push(Delivery::Kind::all, "", "after"));
  host.flush();
  EXPECT_EQ(a->texts(), std::vector<std::string>{"after"});
  // Unwritten frames are dropped so the close frame (4002) goes out next.
  auto frames = b->frames();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].opcode, 8);
  EXPECT_EQ(frames[0].payload.substr(0, 2), std::string("\x0f\xa2", 2));
  EXPECT_EQ(delivery.stats().delivered.load(), 4u);
}

TEST_F(PushDeliveryTest, ControlMessagesJoinLeaveAndKickByUserOrConnection) {
  auto a1 = host.open(1, "alice");
  auto a2 = host.open(2, "alice");
  auto b = host.open(3, "bob");
  delivery.apply_control(control(Verb::join, "alice", "", "room"));
  delivery.apply_control(control(Verb::join, "", "gw1.3", "room"));
  ASSERT_NE(groups.members("room"), nullptr);
  EXPECT_EQ(groups.members("room")->size(), 3u);
  delivery.apply_control(control(Verb::leave, "", "gw1.2", "room"));
  EXPECT_EQ(groups.members("room")->size(), 2u);

  delivery.apply_control(control(Verb::kick, "alice"));
  EXPECT_FALSE(a1->session->is_open());
  EXPECT_FALSE(a2->session->is_open());
  EXPECT_TRUE(b->session->is_open());
  EXPECT_EQ(a1->session->close_code(), 4003);
}

TEST_F(PushDeliveryTest, RevokeIsLeftToTheTokenLifecycle) {
  auto a = host.open(1, "alice");
  delivery.apply_control(control(Verb::revoke, "alice"));
  EXPECT_TRUE(a->session->is_open());
}

TEST_F(PushDeliveryTest, TheUsersFirstAndLastConnectionMoveTheInterestAndClosingLeavesGroups) {
  auto a = host.open(1, "alice");
  delivery.on_opened(*a->session, {.first_of_user = true});
  EXPECT_EQ(fake.interest(InterestKind::user, "alice"), 1);
  auto a2 = host.open(2, "alice");
  delivery.on_opened(*a2->session, {.first_of_user = false});
  EXPECT_EQ(fake.interest(InterestKind::user, "alice"), 1);
  groups.join(*a->session, "room");

  delivery.on_closed(*a->session, {.last_of_user = false});
  EXPECT_EQ(fake.interest(InterestKind::user, "alice"), 1);
  EXPECT_EQ(groups.members("room"), nullptr);
  delivery.on_closed(*a2->session, {.last_of_user = true});
  EXPECT_EQ(fake.interest(InterestKind::user, "alice"), 0);
}

}  // namespace
}  // namespace wsgw::delivery
