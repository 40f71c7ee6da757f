#include "messages/control_protocol.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace calima::protocol;
using nlohmann::json;

namespace {

/// Runs `f` and returns the protocol_error it throws (fails the test when it throws nothing).
template <class F>
protocol_error expect_protocol_error(F&& f) {
  try {
    f();
  } catch (const protocol_error& e) {
    return e;
  }
  ADD_FAILURE() << "expected a protocol_error";
  return protocol_error("none", "none");
}

std::string header(uint32_t n) {
  std::string h(4, '\0');
  h[0] = static_cast<char>(n >> 24);
  h[1] = static_cast<char>(n >> 16);
  h[2] = static_cast<char>(n >> 8);
  h[3] = static_cast<char>(n);
  return h;
}

} // namespace

// -- framing ------------------------------------------------------------------------------

TEST(control_protocol, frame_has_big_endian_length_prefix) {
  auto f = encode_frame(json{{"a", 1}});
  ASSERT_EQ(f.size(), 4u + 7u);
  EXPECT_EQ(f.substr(0, 4), header(7));
  EXPECT_EQ(f.substr(4), R"({"a":1})");
}

TEST(control_protocol, decodes_frames_fed_byte_by_byte) {
  auto bytes = encode_frame(json{{"id", 1}, {"op", "ping"}}) +
               encode_frame(json{{"hello", {{"protocol", 1}}}});
  frame_decoder d;
  std::vector<json> got;
  for (char c : bytes) {
    d.feed(std::string_view(&c, 1));
    while (auto f = d.next())
      got.push_back(*f);
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0]["op"], "ping");
  EXPECT_EQ(got[1]["hello"]["protocol"], 1);
  EXPECT_FALSE(d.mid_frame());
}

TEST(control_protocol, partial_frame_waits_for_the_rest) {
  auto bytes = encode_frame(json{{"x", std::string(1000, 'y')}});
  frame_decoder d;
  d.feed(std::string_view(bytes).substr(0, 3)); // not even the whole header
  EXPECT_FALSE(d.next());
  EXPECT_TRUE(d.mid_frame());
  d.feed(std::string_view(bytes).substr(3, 500));
  EXPECT_FALSE(d.next());
  d.feed(std::string_view(bytes).substr(503));
  auto f = d.next();
  ASSERT_TRUE(f);
  EXPECT_EQ((*f)["x"].get<std::string>().size(), 1000u);
  EXPECT_FALSE(d.next());
  EXPECT_FALSE(d.mid_frame());
}

TEST(control_protocol, several_frames_in_one_read) {
  std::string bytes;
  for (int i = 0; i < 5; ++i)
    bytes += encode_frame(json{{"id", i}});
  bytes += encode_frame(json{{"id", 5}}).substr(0, 6); // and the start of a sixth
  frame_decoder d;
  d.feed(bytes);
  for (int i = 0; i < 5; ++i) {
    auto f = d.next();
    ASSERT_TRUE(f);
    EXPECT_EQ((*f)["id"], i);
  }
  EXPECT_FALSE(d.next());
  EXPECT_TRUE(d.mid_frame());
}

TEST(control_protocol, rejects_oversize_frame_from_its_header) {
  frame_decoder d;
  d.feed(header(max_frame_size + 1)); // the body never needs to arrive
  auto e = expect_protocol_error([&] { d.next(); });
  EXPECT_EQ(e.code(), error_code::bad_frame);
  EXPECT_NE(std::string(e.what()).find("exceeds the maximum of 1048576 bytes"), std::string::npos)
    << e.what();
  // The stream cannot be resynchronised: the decoder stays failed.
  d.feed(encode_frame(json{{"ok", true}}));
  EXPECT_THROW(d.next(), protocol_error);
}

TEST(control_protocol, accepts_frame_of_exactly_the_maximum) {
  json j{{"s", std::string(max_frame_size - 8, 'a')}}; // {"s":"..."} is 8 bytes of syntax
  auto f = encode_frame(j);
  ASSERT_EQ(f.size(), 4 + max_frame_size);
  frame_decoder d;
  d.feed(f);
  EXPECT_TRUE(d.next());
}

TEST(control_protocol, refuses_to_encode_oversize_message) {
  json j{{"s", std::string(max_frame_size, 'a')}};
  auto e = expect_protocol_error([&] { encode_frame(j); });
  EXPECT_EQ(e.code(), error_code::bad_frame);
}

TEST(control_protocol, names_text_protocols_spoken_at_it) {
  frame_decoder d;
  d.feed("GET /v1/info HTTP/1.1\r\n");
  auto e = expect_protocol_error([&] { d.next(); });
  EXPECT_NE(std::string(e.what()).find("not a calima control frame (stream starts with \"GET "),
            std::string::npos)
    << e.what();
}

TEST(control_protocol, rejects_garbage_bodies) {
  {
    frame_decoder d;
    d.feed(header(5) + "{nope");
    auto e = expect_protocol_error([&] { d.next(); });
    EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos) << e.what();
  }
  {
    frame_decoder d;
    d.feed(header(7) + "[1,2,3]");
    auto e = expect_protocol_error([&] { d.next(); });
    EXPECT_NE(std::string(e.what()).find("array, not an object"), std::string::npos) << e.what();
  }
  {
    frame_decoder d;
    d.feed(header(0));
    auto e = expect_protocol_error([&] { d.next(); });
    EXPECT_NE(std::string(e.what()).find("empty frame"), std::string::npos) << e.what();
  }
}

TEST(control_protocol, rejects_deeply_nested_frames) {
  std::string deep = R"({"a":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
  frame_decoder d;
  d.feed(header(static_cast<uint32_t>(deep.size())) + deep);
  auto e = expect_protocol_error([&] { d.next(); });
  EXPECT_STREQ(e.what(), "frame nests deeper than 64 levels");
  // Brackets inside strings do not count; 64 levels are fine.
  std::string ok = R"({"s":"[[[[[[[[[[\"[[[[[[[[[[","a":)" + std::string(63, '[') +
                   std::string(63, ']') + "}";
  frame_decoder d2;
  d2.feed(header(static_cast<uint32_t>(ok.size())) + ok);
  EXPECT_TRUE(d2.next());
}

TEST(control_protocol, encodes_invalid_utf8_with_replacement) {
  auto f = encode_frame(json{{"line", std::string("a\xff")}});
  frame_decoder d;
  d.feed(f);
  auto j = d.next();
  ASSERT_TRUE(j);
  EXPECT_EQ((*j)["line"], "a\xEF\xBF\xBD");
}

// -- handshake ----------------------------------------------------------------------------

TEST(control_protocol, hello_round_trip) {
  client_hello c{1, "limactl 2.2.0"};
  EXPECT_EQ(encode(c), json::parse(R"({"hello":{"protocol":1,"client":"limactl 2.2.0"}})"));
  auto back = decode_client_hello(encode(c));
  EXPECT_EQ(back.client, "limactl 2.2.0");

  server_hello s{1, "calima-supervisor 2.2.0", 42};
  EXPECT_EQ(encode(s), json::parse(
                         R"({"hello":{"protocol":1,"server":"calima-supervisor 2.2.0","pid":42}})"));
  auto r = decode_server_hello(encode(s));
  ASSERT_TRUE(std::holds_alternative<server_hello>(r));
  EXPECT_EQ(std::get<server_hello>(r).pid, 42);
}

TEST(control_protocol, version_mismatch_is_unsupported_protocol) {
  auto e = expect_protocol_error([] {
    decode_client_hello(json::parse(R"({"hello":{"protocol":2,"client":"limactl 9"}})"));
  });
  EXPECT_EQ(e.code(), error_code::unsupported_protocol);
  EXPECT_NE(std::string(e.what()).find("unsupported protocol version 2 (client \"limactl 9\")"),
            std::string::npos)
    << e.what();
}

TEST(control_protocol, request_before_hello_is_bad_request) {
  auto e = expect_protocol_error([] { decode_client_hello(json{{"id", 1}, {"op", "ping"}}); });
  EXPECT_EQ(e.code(), error_code::bad_request);
  EXPECT_STREQ(e.what(), "expected a hello frame first, got a frame with keys {\"id\", \"op\"}");
  e = expect_protocol_error([] { decode_client_hello(json{{"hello", {{"protocol", "1"}}}}); });
  EXPECT_EQ(e.code(), error_code::bad_request);
}

TEST(control_protocol, server_refusal_instead_of_hello) {
  auto r = decode_server_hello(encode(connection_error{{"unsupported_protocol", "too new"}}));
  ASSERT_TRUE(std::holds_alternative<connection_error>(r));
  EXPECT_EQ(std::get<connection_error>(r).error.message, "too new");
  EXPECT_THROW(decode_server_hello(json{{"id", 1}}), protocol_error);
}

// -- requests and server messages ----------------------------------------------------------

TEST(control_protocol, request_round_trip) {
  request r{7, op::stop, json{{"name", "default"}, {"force", true}}};
  auto j = encode(r);
  EXPECT_EQ(j, json::parse(R"({"id":7,"op":"stop","args":{"name":"default","force":true}})"));
  auto back = decode_request(j);
  EXPECT_EQ(back.id, 7u);
  EXPECT_EQ(back.operation, op::stop);
  EXPECT_EQ(back.args.get<stop_args>().force, true);
  EXPECT_EQ(decode_request(json{{"id", 1}, {"op", "ping"}}).args, json::object());
}

TEST(control_protocol, malformed_requests) {
  EXPECT_EQ(expect_protocol_error([] { decode_request(json{{"op", "ping"}}); }).code(),
            error_code::bad_request);
  EXPECT_EQ(expect_protocol_error([] { decode_request(json{{"id", -1}, {"op", "ping"}}); }).code(),
            error_code::bad_request);
  EXPECT_EQ(expect_protocol_error([] { decode_request(json{{"id", 1}}); }).code(),
            error_code::bad_request);
  EXPECT_EQ(
    expect_protocol_error([] { decode_request(json{{"id", 1}, {"op", "ping"}, {"args", 3}}); })
      .code(),
    error_code::bad_request);
  auto e = expect_protocol_error([] { decode_request(json{{"id", 1}, {"op", "reboot"}}); });
  EXPECT_EQ(e.code(), error_code::unknown_op);
  EXPECT_STREQ(e.what(), "unknown operation \"reboot\"");
  EXPECT_EQ(request_id(json{{"id", 5}, {"op", "reboot"}}), std::optional<uint64_t>(5));
}

TEST(control_protocol, op_names_round_trip) {
  for (auto o : {op::ping, op::list, op::inspect, op::start, op::stop, op::shutdown,
                 op::debug_fault})
    EXPECT_EQ(parse_op(to_string(o)), o);
  EXPECT_FALSE(parse_op("Ping"));
}

TEST(control_protocol, validates_args_per_op) {
  auto code = [](op o, const char* args) {
    try {
      validate_args(o, json::parse(args));
      return std::string("ok");
    } catch (const protocol_error& e) {
      return e.code() + ": " + e.what();
    }
  };
  EXPECT_EQ(code(op::ping, "{}"), "ok");
  EXPECT_EQ(code(op::list, "{}"), "ok");
  EXPECT_EQ(code(op::list, R"({"names":["a","b"]})"), "ok");
  EXPECT_EQ(code(op::list, R"({"names":"a"})"),
            "invalid_argument: \"names\" must be an array of strings");
  EXPECT_EQ(code(op::inspect, "{}"), "invalid_argument: missing \"name\"");
  EXPECT_EQ(code(op::start, R"({"name":""})"), "invalid_argument: \"name\" must not be empty");
  EXPECT_EQ(code(op::start, R"({"name":"a","timeout_ms":-1})"),
            "invalid_argument: \"timeout_ms\" must not be negative");
  EXPECT_EQ(code(op::stop, R"({"name":"a","force":"yes"})"),
            "invalid_argument: \"force\" must be a boolean");
  EXPECT_EQ(code(op::stop, R"({"name":"a","force":true,"future_field":1})"), "ok");
  EXPECT_EQ(code(op::debug_fault, R"({"instance":"a","component":"ssh","kind":"crash"})"), "ok");
  EXPECT_EQ(code(op::debug_fault, R"({"instance":"a","component":"ssh","kind":"explode"})"),
            "invalid_argument: unknown fault kind \"explode\" (want \"crash\" or \"hang\")");
  EXPECT_EQ(code(op::shutdown, "[]"), "invalid_argument: args must be a JSON object");
}

TEST(control_protocol, server_messages) {
  auto ev = decode_server_message(encode(event{3, json{{"type", "status"}}}));
  ASSERT_TRUE(std::holds_alternative<event>(ev));
  EXPECT_EQ(std::get<event>(ev).body["type"], "status");

  auto ok = decode_server_message(encode(make_ok(3, json{{"pid", 9}})));
  ASSERT_TRUE(std::holds_alternative<response>(ok));
  EXPECT_TRUE(std::get<response>(ok).ok);
  EXPECT_EQ(std::get<response>(ok).result["pid"], 9);

  auto failed = encode(make_error(4, error_code::not_found, "instance \"x\" does not exist"));
  EXPECT_EQ(failed, json::parse(R"({"id":4,"ok":false,"error":{"code":"not_found",)"
                                R"("message":"instance \"x\" does not exist"}})"));
  auto f = std::get<response>(decode_server_message(failed));
  EXPECT_FALSE(f.ok);
  EXPECT_EQ(f.error.code, "not_found");

  auto ce = decode_server_message(encode(connection_error{{"bad_frame", "garbage"}}));
  ASSERT_TRUE(std::holds_alternative<connection_error>(ce));

  EXPECT_THROW(decode_server_message(json{{"id", 1}}), protocol_error);          // no ok
  EXPECT_THROW(decode_server_message(json{{"hello", json::object()}}), protocol_error);
  EXPECT_THROW(decode_server_message(json{{"id", 1}, {"ok", false}}), protocol_error);
  EXPECT_THROW(decode_server_message(json{{"id", 1}, {"event", 3}}), protocol_error);
}

TEST(control_protocol, typed_payloads_round_trip) {
  instance_summary s;
  s.name = "default";
  s.status = "Running";
  s.phase = "running";
  s.ssh_local_port = 60022;
  s.vm_pid = 1234;
  s.errors = {"e1"};
  s.forwards = {{"tcp", "[::]:8080", "127.0.0.1:8080", "forwarding", "", 1}};
  list_result l{{s}};
  json j = l;
  EXPECT_EQ(j["instances"][0]["ssh_local_port"], 60022);
  EXPECT_EQ(j["instances"][0]["forwards"][0]["hostAddr"], "127.0.0.1:8080");
  auto back = j.get<list_result>();
  ASSERT_EQ(back.instances.size(), 1u);
  EXPECT_EQ(back.instances[0].forwards[0].restarts, 1);
  EXPECT_EQ(back.instances[0].errors, std::vector<std::string>{"e1"});

  json ir = instance_result{s};
  EXPECT_EQ(ir["instance"]["vm_pid"], 1234);
  EXPECT_EQ(ir.get<instance_result>().instance.phase, "running");

  json p = ping_result{42, "calima-supervisor 2.2.0", 1500};
  EXPECT_EQ(p.get<ping_result>().uptime_ms, 1500);
  json sh = shutdown_result{{"a", "b"}};
  EXPECT_EQ(sh.get<shutdown_result>().stopped.size(), 2u);
  json st = start_args{"default", 60000};
  EXPECT_EQ(st.get<start_args>().timeout_ms, 60000);
  json df = debug_fault_args{"default", "vm", "hang"};
  EXPECT_EQ(df.get<debug_fault_args>().component, "vm");
}

TEST(control_protocol, stream_event_bodies) {
  auto e = instance_event_body("default", json::parse(R"({"time":"t","status":{"running":true}})"));
  EXPECT_EQ(e, json::parse(R"({"instance":"default","type":"event",)"
                           R"("event":{"time":"t","status":{"running":true}}})"));
  auto l = log_event_body("default", json{{"level", "info"}, {"msg", "Waiting"}});
  EXPECT_EQ(l, json::parse(R"({"instance":"default","type":"log",)"
                           R"("log":{"level":"info","msg":"Waiting"}})"));
}
