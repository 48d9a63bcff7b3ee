#include "engine/delivery/groups.hpp"

#include <gtest/gtest.h>

#include "tests/unit/support/fake_bus.hpp"
#include "tests/unit/support/fake_host.hpp"

namespace wsgw::delivery {
namespace {

using bus::InterestKind;
using testing::FakeBus;
using testing::FakeHost;

class GroupsTest : public ::testing::Test {
 protected:
  FakeBus fake;
  bus::Bus* bus = &fake;
  FakeHost host;
  Groups groups{bus, 3};
};

TEST_F(GroupsTest, TheFirstMemberSubscribesAndTheLastUnsubscribes) {
  auto a = host.open(1, "alice");
  auto b = host.open(2, "bob");
  groups.join(*a->session, "room");
  EXPECT_EQ(fake.interest(InterestKind::group, "room"), 1);
  groups.join(*b->session, "room");
  EXPECT_EQ(fake.interest(InterestKind::group, "room"), 1);  // once per worker
  ASSERT_NE(groups.members("room"), nullptr);
  EXPECT_EQ(*groups.members("room"),
            (std::vector<session::Session*>{a->session.get(), b->session.get()}));

  groups.leave(*a->session, "room");
  EXPECT_EQ(fake.interest(InterestKind::group, "room"), 1);
  groups.leave(*b->session, "room");
  EXPECT_EQ(fake.interest(InterestKind::group, "room"), 0);
  EXPECT_EQ(groups.members("room"), nullptr);
  EXPECT_EQ(groups.size(), 0u);
}

TEST_F(GroupsTest, JoiningTwiceOrLeavingWithoutJoiningChangesNothing) {
  auto a = host.open(1, "alice");
  groups.join(*a->session, "room");
  groups.join(*a->session, "room");
  EXPECT_EQ(groups.members("room")->size(), 1u);
  EXPECT_EQ(a->session->groups->size(), 1u);
  groups.leave(*a->session, "elsewhere");
  auto b = host.open(2, "bob");
  groups.leave(*b->session, "room");  // bob never joined: no list allocated
  EXPECT_EQ(b->session->groups, nullptr);
  EXPECT_EQ(groups.members("room")->size(), 1u);
  EXPECT_EQ(fake.interest_calls, 1);
}

TEST_F(GroupsTest, LeaveAllLeavesEveryGroupOfTheConnection) {
  auto a = host.open(1, "alice");
  auto b = host.open(2, "bob");
  groups.join(*a->session, "x");
  groups.join(*a->session, "y");
  groups.join(*b->session, "y");
  groups.leave_all(*a->session);
  EXPECT_TRUE(a->session->groups->empty());
  EXPECT_EQ(groups.members("x"), nullptr);
  EXPECT_EQ(groups.members("y")->size(), 1u);
  EXPECT_EQ(fake.interest(InterestKind::group, "x"), 0);
  EXPECT_EQ(fake.interest(InterestKind::group, "y"), 1);
}

TEST_F(GroupsTest, WorksWithoutABus) {
  bus = nullptr;
  auto a = host.open(1, "alice");
  groups.join(*a->session, "room");
  EXPECT_EQ(groups.members("room")->size(), 1u);
  groups.leave(*a->session, "room");
  EXPECT_EQ(groups.size(), 0u);
  EXPECT_EQ(fake.interest_calls, 0);
}

}  // namespace
}  // namespace wsgw::delivery
