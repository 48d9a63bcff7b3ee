#include "engine/delivery/push_router.hpp"

#include <gtest/gtest.h>

namespace wsgw::delivery {
namespace {

struct Fixture : ::testing::Test {
  Fixture() {
    for (int i = 0; i < 3; ++i) {
      inboxes.push_back(std::make_unique<Inbox>([this, i] { ++wakes[i]; }));
    }
    router = std::make_unique<PushRouter>(
        std::vector<Inbox*>{inboxes[0].get(), inboxes[1].get(), inboxes[2].get()}, "gw");
  }
  std::vector<Delivery> take(int i) {
    std::vector<Delivery> out;
    inboxes[i]->drain(out);
    return out;
  }
  int wakes[3] = {0, 0, 0};
  std::vector<std::unique_ptr<Inbox>> inboxes;
  std::unique_ptr<PushRouter> router;
};

constexpr const char* kPush = R"({"command":"NOTIFY","data":{"n":1}})";

TEST_F(Fixture, UserPushGoesOnlyToWorkersInTheMaskWithOneSharedFrame) {
  router->on_push_user("alice", 0b101, kPush);
  auto a = take(0), b = take(1), c = take(2);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_TRUE(b.empty());
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(a[0].kind, Delivery::Kind::user);
  EXPECT_EQ(a[0].key, "alice");
  EXPECT_EQ(a[0].frame.get(), c[0].frame.get());  // encoded once
  EXPECT_NE(a[0].frame->find("\"command\":\"NOTIFY\""), std::string::npos);
}

TEST_F(Fixture, OneWakePerEmptyToNonEmptyTransition) {
  router->on_push_all(kPush);
  router->on_push_all(kPush);
  router->on_push_all(kPush);
  EXPECT_EQ(wakes[0], 1);
  EXPECT_EQ(take(0).size(), 3u);
  router->on_push_all(kPush);
  EXPECT_EQ(wakes[0], 2);
}

TEST_F(Fixture, ConnPushGoesToTheWorkerNamedBySequence) {
  router->on_push_conn(7, kPush);  // 7 % 3 == 1
  EXPECT_TRUE(take(0).empty());
  auto b = take(1);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].number, 7u);
  EXPECT_TRUE(take(2).empty());
}

TEST_F(Fixture, InvalidPushIsDroppedAndCounted) {
  router->on_push_all("garbage");
  router->on_push_user("alice", 1, R"({"nocommand":1})");
  EXPECT_TRUE(take(0).empty());
  EXPECT_EQ(router->stats().bad_pushes.load(), 2u);
  EXPECT_EQ(router->stats().pushes.load(), 0u);
}

TEST_F(Fixture, ControlForAnotherGatewaysConnectionIsIgnored) {
  router->on_control("kick", R"({"conn":"other.4"})", nullptr);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(take(i).empty());
  router->on_control("kick", R"({"conn":"gw.4"})", nullptr);  // 4 % 3 == 1
  auto b = take(1);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].control->verb, protocol::ControlMessage::Verb::kick);
}

TEST_F(Fixture, UserControlGoesToEveryWorker) {
  router->on_control("join", R"({"group":"g","user":"alice"})", nullptr);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(take(i).size(), 1u);
  router->on_control("join", R"({"user":"alice"})", nullptr);
  EXPECT_EQ(router->stats().bad_controls.load(), 1u);
}

TEST_F(Fixture, KickWithALongReasonIsAppliedWithTheReasonCut) {
  std::string reason;
  for (int i = 0; i < 100; ++i) reason += "\xC3\xA9";  // 100 x U+00E9: 200 bytes
  router->on_control("kick", R"({"user":"alice","reason":")" + reason + "\"}", nullptr);
  router->on_control("revoke", R"({"user":"alice","reason":")" + reason + "\"}", nullptr);
  EXPECT_EQ(router->stats().bad_controls.load(), 0u);
  for (int i = 0; i < 3; ++i) {
    auto got = take(i);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].control->verb, protocol::ControlMessage::Verb::kick);
    EXPECT_EQ(got[1].control->verb, protocol::ControlMessage::Verb::revoke);
    for (const auto& d : got) EXPECT_EQ(d.control->reason, reason.substr(0, 120));
  }
}

TEST_F(Fixture, ARequestedControlIsAnsweredWithTheVerdict) {
  std::string answer;
  router->on_control("kick", R"({"user":"alice"})", &answer);
  EXPECT_EQ(answer, R"({"code":0,"message":"success"})");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(take(i).size(), 1u);

  // Refused: answered 400 with the reason, counted, and nothing reaches a worker.
  router->on_control("revoke", R"({"reason":"no target"})", &answer);
  EXPECT_EQ(answer,
            R"j({"code":400,"message":"give exactly one of user and tokenId (got neither)"})j");
  router->on_control("kick", "not json", &answer);
  EXPECT_EQ(answer, R"({"code":400,"message":"not valid JSON"})");
  EXPECT_EQ(router->stats().bad_controls.load(), 2u);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(take(i).empty());

  // A connection of another gateway: accepted (that gateway applies it).
  router->on_control("kick", R"({"conn":"other.4"})", &answer);
  EXPECT_EQ(answer, R"({"code":0,"message":"success"})");
}

TEST_F(Fixture, ReplyGoesToItsWorker) {
  router->on_reply(2, 99, bus::ReplyStatus::no_responders, "");
  auto c = take(2);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].number, 99u);
  EXPECT_EQ(c[0].status, bus::ReplyStatus::no_responders);
  router->on_reply(9, 1, bus::ReplyStatus::ok, "{}");  // no such worker: ignored
}

}  // namespace
}  // namespace wsgw::delivery
