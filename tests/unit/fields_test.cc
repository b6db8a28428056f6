#include "fields.h"

#include <gtest/gtest.h>

namespace h2pool_core {
namespace {

TEST(FieldList, JoinedIsEmptyWhenNoFieldHasTheName) {
  FieldList f;
  f.add("content-type", "text/plain");
  EXPECT_FALSE(f.joined("content-encoding").has_value());
  EXPECT_FALSE(FieldList().joined("content-encoding").has_value());
}

TEST(FieldList, JoinedOfOneFieldIsItsValue) {
  FieldList f;
  f.add("content-encoding", "gzip");
  EXPECT_EQ(f.joined("content-encoding"), "gzip");
}

TEST(FieldList, JoinedCombinesRepeatedFieldsInOrder) {
  FieldList f;
  f.add("content-encoding", "deflate");
  f.add("x-other", "1");
  f.add("content-encoding", "gzip");
  f.add("content-encoding", "br, identity");
  EXPECT_EQ(f.joined("content-encoding"), "deflate, gzip, br, identity");
  EXPECT_EQ(f.joined("x-other"), "1");
}

TEST(FieldList, JoinedMatchesNamesIgnoringAsciiCase) {
  FieldList f;
  f.add("Content-Encoding", "gzip");
  f.add("content-encoding", "gzip");
  EXPECT_EQ(f.joined("CONTENT-ENCODING"), "gzip, gzip");
  EXPECT_FALSE(f.joined("content-encodin").has_value());
  EXPECT_FALSE(f.joined("content-encodings").has_value());
}

TEST(FieldList, JoinedTellsAnEmptyValueFromNoField) {
  FieldList f;
  f.add("x-empty", "");
  auto one = f.joined("x-empty");
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(*one, "");
  f.add("x-empty", "a");
  EXPECT_EQ(f.joined("x-empty"), ", a");
}

TEST(FieldList, JoinedIgnoresRemovedFields) {
  FieldList f;
  f.add("content-encoding", "gzip");
  f.add("content-length", "10");
  f.add("content-encoding", "gzip");
  f.remove({"content-encoding"});
  EXPECT_FALSE(f.joined("content-encoding").has_value());
  EXPECT_EQ(f.joined("content-length"), "10");
}

} // namespace
} // namespace h2pool_core
