#include "engine/script/source_index.hpp"

#include <gtest/gtest.h>

namespace wsgw::script {
namespace {

TEST(SourceIndex, FindsKeysOutsideCommentsAndStrings) {
  const char* src =
      "-- mode = 'comment'\n"            // 1
      "--[[ route = {\n"                 // 2
      "  mode = 'long comment' } ]]\n"   // 3
      "local s = \"mode = 'string'\"\n"  // 4
      "local l = [==[\n"                 // 5
      "mode = 'long string' ]==]\n"      // 6
      "return {\n"                       // 7
      "  command = 'X',\n"               // 8
      "  handle = function(ctx)\n"       // 9
      "    if ctx then return 1 end\n"   // 10
      "  end,\n"                         // 11
      "  route = {\n"                    // 12
      "    subject = 'svc.x',\n"         // 13
      "    mode == 'x',\n"               // 14: a comparison, not a key
      "    mode = 'request',\n"          // 15
      "  },\n"                           // 16
      "}\n";                             // 17
  SourceIndex idx(src);
  EXPECT_EQ(idx.return_line(), 7);  // the top-level return, not the one in handle
  EXPECT_EQ(idx.line_of({"command"}), 8);
  EXPECT_EQ(idx.line_of({"route"}), 12);
  EXPECT_EQ(idx.line_of({"route", "mode"}), 15);
  EXPECT_EQ(idx.line_of({"route", "subject"}), 13);
  EXPECT_EQ(idx.line_of({"route", "nothing"}), 12);  // the deepest key found
  EXPECT_EQ(idx.line_of({"limits"}), 7);             // none: the return line
}

TEST(SourceIndex, NoReturnGivesTheLastLine) {
  SourceIndex idx("local x = 1\nlocal y = 2\n");
  EXPECT_EQ(idx.return_line(), 3);
}

}  // namespace
}  // namespace wsgw::script
