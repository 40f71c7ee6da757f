// Frame encoding and the text payloads of the tunnel protocol.

#include "guest/tunnel_protocol.hpp"

#include <gtest/gtest.h>

using namespace calima;
using namespace calima::tunnel;

TEST(tunnel_protocol, header_round_trip_is_big_endian) {
  char b[header_size];
  encode_header({frame_type::data, 1, 0x01020304, 0x00010203}, b);
  EXPECT_EQ(b[0], 4);
  EXPECT_EQ(b[4], 1);
  EXPECT_EQ(b[7], 4);
  EXPECT_EQ(b[9], 1);
  auto h = decode_header(b);
  EXPECT_EQ(h.type, frame_type::data);
  EXPECT_EQ(h.flags, 1);
  EXPECT_EQ(h.stream, 0x01020304u);
  EXPECT_EQ(h.length, 0x00010203u);
  EXPECT_FALSE(known_type(0));
  EXPECT_FALSE(known_type(10));
  EXPECT_TRUE(known_type(9));
}

TEST(tunnel_protocol, ports_round_trip) {
  port_report r;
  r.added = {{"tcp", "127.0.0.1", 8080}, {"udp", "::", 53}};
  r.removed = {{"tcp", "0.0.0.0", 22}};
  r.errors = {"cannot read /proc/net/tcp6:\nno such file"};
  auto back = decode_ports(encode_ports(r), false);
  ASSERT_EQ(back.added.size(), 2u);
  EXPECT_EQ(back.added[1].ip, "::");
  EXPECT_EQ(back.added[1].proto, "udp");
  ASSERT_EQ(back.removed.size(), 1u);
  EXPECT_EQ(back.removed[0].port, 22);
  ASSERT_EQ(back.errors.size(), 1u);
  EXPECT_EQ(back.errors[0], "cannot read /proc/net/tcp6: no such file");
  r.full = true;
  auto full = decode_ports(encode_ports(r), true);
  EXPECT_EQ(full.added.size(), 2u);
  EXPECT_TRUE(full.removed.empty());
  // malformed lines are skipped
  auto bad = decode_ports("+ sctp 1.2.3.4 5\n+ tcp 1.2.3.4 99999\n+ tcp 1.2.3.4 80\nxx\n", false);
  ASSERT_EQ(bad.added.size(), 1u);
  EXPECT_EQ(bad.added[0].port, 80);
}

TEST(tunnel_protocol, open_and_addresses) {
  std::string proto, addr, ip;
  int port = 0;
  ASSERT_TRUE(decode_open(encode_open("udp", "[::]:53"), proto, addr));
  EXPECT_EQ(proto, "udp");
  EXPECT_EQ(addr, "[::]:53");
  EXPECT_FALSE(decode_open("sctp 1.2.3.4:5", proto, addr));
  EXPECT_EQ(join_host_port("::1", 80), "[::1]:80");
  EXPECT_EQ(join_host_port("10.0.0.1", 80), "10.0.0.1:80");
  ASSERT_TRUE(split_host_port("[::1]:8080", ip, port));
  EXPECT_EQ(ip, "::1");
  EXPECT_EQ(port, 8080);
  EXPECT_FALSE(split_host_port("::1:80", ip, port));
  EXPECT_FALSE(split_host_port("1.2.3.4:99999", ip, port));
  EXPECT_FALSE(split_host_port("1.2.3.4", ip, port));
  uint16_t v = 0;
  std::string peer;
  ASSERT_TRUE(decode_hello(encode_hello("agent"), v, peer));
  EXPECT_EQ(v, protocol_version);
  EXPECT_EQ(peer, "agent");
}
