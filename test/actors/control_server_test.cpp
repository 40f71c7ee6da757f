#include "actors/control/control_server.hpp"
#include "cli/supervisor/supervisor_client.hpp"
#include "test/actors/control_server_fixture.hpp"

#include <sys/stat.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <vector>

using namespace calima;
using namespace calima::test;
using calima::cli::supervisor_call_error;
using calima::cli::supervisor_client;
using calima::cli::supervisor_error;
using nlohmann::json;

namespace {

using control_server_test = server_fixture;

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode;
}

supervisor_client connect_to(const std::string& path) {
  return supervisor_client::connect(path);
}

} // namespace

// -- handshake, modes, basic calls -----------------------------------------------------------

TEST_F(control_server_test, handshake_and_ping) {
  start();
  auto c = connect_to(server->socket_path());
  EXPECT_EQ(c.server().protocol, 1);
  EXPECT_EQ(c.server().server, "calima-supervisor test");
  EXPECT_EQ(c.server().pid, ::getpid());
  EXPECT_EQ(c.call(protocol::op::ping), json({{"op", "ping"}}));
  EXPECT_EQ(c.call(protocol::op::list), json({{"op", "list"}})); // same connection, again
}

TEST_F(control_server_test, socket_is_0600_in_a_0700_directory) {
  start();
  EXPECT_EQ(server->socket_path(), home.path() + "/_supervisor/supervisor.sock");
  auto dir_mode = mode_of(home.path() + "/_supervisor");
  EXPECT_TRUE(S_ISDIR(dir_mode));
  EXPECT_EQ(dir_mode & 07777, 0700u);
  auto sock_mode = mode_of(server->socket_path());
  EXPECT_TRUE(S_ISSOCK(sock_mode));
  EXPECT_EQ(sock_mode & 07777, 0600u);
  // Only the socket itself is left in the directory (no temporary name).
  int entries = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(home.path() + "/_supervisor"))
    ++entries;
  EXPECT_EQ(entries, 1);
}

TEST_F(control_server_test, tightens_mode_of_existing_directory) {
  auto dir = home.path() + "/_supervisor";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);
  start();
  EXPECT_EQ(mode_of(dir) & 07777, 0700u);
}

TEST_F(control_server_test, refuses_directory_of_another_owner) {
  auto dir = home.path() + "/_supervisor";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  if (::geteuid() != 0)
    GTEST_SKIP() << "needs root to chown";
  ASSERT_EQ(::chown(dir.c_str(), 12345, 12345), 0);
  actors::control_server s(io, {home.path(), "x", {}, {}, 2000ms, {}}, handler);
  try {
    s.listen();
    FAIL() << "listen() accepted a foreign directory";
  } catch (const actors::control_server_error& e) {
    EXPECT_NE(std::string(e.what()).find("refusing to use " + dir + ": it is owned by uid 12345"),
              std::string::npos)
      << e.what();
  }
}

TEST_F(control_server_test, refuses_a_file_that_is_no_socket) {
  auto dir = home.path() + "/_supervisor";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  { std::ofstream(dir + "/supervisor.sock") << "not a socket"; }
  actors::control_server s(io, {home.path(), "x", {}, {}, 2000ms, {}}, handler);
  try {
    s.listen();
    FAIL() << "listen() replaced a regular file";
  } catch (const actors::control_server_error& e) {
    EXPECT_NE(std::string(e.what()).find("it exists and is not a socket"), std::string::npos)
      << e.what();
  }
}

// -- events and responses ----------------------------------------------------------------------

TEST_F(control_server_test, streams_events_then_final_response) {
  handler->set([](protocol::request req, actors::responder_ptr out) {
    auto name = req.args.get<protocol::start_args>().name;
    for (int i = 1; i <= 3; ++i)
      out->event(json{{"instance", name}, {"step", i}});
    out->ok(json{{"name", name}});
    out->event(json{{"late", true}}); // after the final response: dropped
    out->ok(json{{"twice", true}});   // ignored
  });
  start();
  auto c = connect_to(server->socket_path());
  std::vector<json> events;
  auto result = c.call(protocol::op::start, json{{"name", "default"}},
                       [&](const json& ev) { events.push_back(ev); });
  EXPECT_EQ(result, json({{"name", "default"}}));
  ASSERT_EQ(events.size(), 3u);
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(events[i], json({{"instance", "default"}, {"step", i + 1}}));
  // Nothing stray is left on the connection: the next call gets its own answer.
  handler->set({});
  EXPECT_EQ(c.call(protocol::op::ping), json({{"op", "ping"}}));
}

TEST_F(control_server_test, responds_asynchronously_from_another_thread) {
  std::promise<actors::responder_ptr> parked;
  handler->set([&](protocol::request, actors::responder_ptr out) {
    parked.set_value(std::move(out)); // answer later, elsewhere
  });
  start();
  std::promise<std::vector<json>> events_seen;
  auto call = std::async(std::launch::async, [&] {
    auto c = connect_to(server->socket_path());
    std::vector<json> events;
    auto r = c.call(protocol::op::inspect, json{{"name", "default"}},
                    [&](const json& ev) { events.push_back(ev); });
    events_seen.set_value(events);
    return r;
  });
  auto fut = parked.get_future();
  ASSERT_EQ(fut.wait_for(patience), std::future_status::ready);
  auto out = fut.get();
  std::thread answerer([out] {
    EXPECT_TRUE(out->active());
    out->event(json{{"from", "worker"}});
    out->ok(json{{"answered_by", "worker thread"}});
    EXPECT_FALSE(out->active());
  });
  answerer.join();
  out.reset();
  ASSERT_EQ(call.wait_for(patience), std::future_status::ready);
  EXPECT_EQ(call.get(), json({{"answered_by", "worker thread"}}));
  EXPECT_EQ(events_seen.get_future().get(), std::vector<json>{json({{"from", "worker"}})});
}

TEST_F(control_server_test, serves_concurrent_clients) {
  // Every client's request is parked until all of them are in flight at once: a server that
  // served connections one after another would never get there.
  constexpr int clients = 8;
  std::mutex mu;
  std::vector<actors::responder_ptr> parked;
  handler->set([&](protocol::request req, actors::responder_ptr out) {
    if (req.operation != protocol::op::inspect) {
      out->ok(json{{"op", protocol::to_string(req.operation)}});
      return;
    }
    std::vector<actors::responder_ptr> ready;
    {
      std::lock_guard<std::mutex> lock(mu);
      parked.push_back(out);
      if (parked.size() == clients)
        ready.swap(parked);
    }
    for (auto& r : ready)
      r->ok(json{{"released", true}});
  });
  start();
  std::vector<std::future<int>> results;
  for (int i = 0; i < clients; ++i)
    results.push_back(std::async(std::launch::async, [this, i] {
      auto c = connect_to(server->socket_path());
      int good = 0;
      for (int k = 0; k < 10; ++k)
        good += c.call(protocol::op::ping) == json({{"op", "ping"}});
      auto r = c.call(protocol::op::inspect, json{{"name", "vm" + std::to_string(i)}}, {},
                      patience);
      good += r == json({{"released", true}});
      return good;
    }));
  for (auto& r : results) {
    ASSERT_EQ(r.wait_for(patience), std::future_status::ready);
    EXPECT_EQ(r.get(), 11);
  }
}

TEST_F(control_server_test, error_response_reaches_the_client) {
  handler->set([](protocol::request req, actors::responder_ptr out) {
    out->fail(protocol::error_code::not_found,
              "instance \"" + req.args["name"].get<std::string>() + "\" does not exist");
  });
  start();
  auto c = connect_to(server->socket_path());
  try {
    c.call(protocol::op::inspect, json{{"name", "ghost"}});
    FAIL() << "no error";
  } catch (const supervisor_call_error& e) {
    EXPECT_EQ(e.code(), "not_found");
    EXPECT_STREQ(e.what(), "instance \"ghost\" does not exist");
  }
}

TEST_F(control_server_test, invalid_args_never_reach_the_handler) {
  start();
  auto c = connect_to(server->socket_path());
  try {
    c.call(protocol::op::start, json{{"name", 42}});
    FAIL() << "no error";
  } catch (const supervisor_call_error& e) {
    EXPECT_EQ(e.code(), "invalid_argument");
    EXPECT_STREQ(e.what(), "\"name\" must be a string");
  }
  EXPECT_EQ(handler->calls(), 0);
  EXPECT_EQ(c.call(protocol::op::ping), json({{"op", "ping"}})); // connection still fine
}

TEST_F(control_server_test, dropped_or_throwing_handler_still_answers) {
  handler->set([](protocol::request req, actors::responder_ptr out) {
    if (req.operation == protocol::op::stop)
      throw std::runtime_error("boom");
    // list: the responder is dropped without an answer
  });
  start();
  auto c = connect_to(server->socket_path());
  try {
    c.call(protocol::op::list, json::object(), {}, patience);
    FAIL() << "no error";
  } catch (const supervisor_call_error& e) {
    EXPECT_EQ(e.code(), "internal");
    EXPECT_STREQ(e.what(), "the supervisor dropped request 1 without answering");
  }
  try {
    c.call(protocol::op::stop, json{{"name", "x"}}, {}, patience);
    FAIL() << "no error";
  } catch (const supervisor_call_error& e) {
    EXPECT_EQ(e.code(), "internal");
    EXPECT_STREQ(e.what(), "boom");
  }
}

TEST_F(control_server_test, client_call_times_out_and_connection_stays_usable) {
  actors::responder_ptr parked;
  handler->set([&](protocol::request req, actors::responder_ptr out) {
    if (req.operation == protocol::op::inspect)
      parked = out; // never answered during the call
    else
      out->ok(json{{"op", protocol::to_string(req.operation)}});
  });
  start();
  auto c = connect_to(server->socket_path());
  EXPECT_THROW(c.call(protocol::op::inspect, json{{"name", "a"}}, {}, 100ms), supervisor_error);
  on_io([&] { parked->ok(json{{"late", true}}); }); // the late answer is skipped by id
  on_io([&] { parked.reset(); });
  EXPECT_EQ(c.call(protocol::op::ping, json::object(), {}, patience), json({{"op", "ping"}}));
}

// -- raw protocol at the server ----------------------------------------------------------------

TEST_F(control_server_test, rejects_unsupported_protocol_version) {
  start();
  raw_peer p(server->socket_path());
  p.hello(2);
  auto f = p.next();
  ASSERT_TRUE(f);
  EXPECT_EQ((*f)["error"]["code"], "unsupported_protocol");
  EXPECT_NE((*f)["error"]["message"].get<std::string>().find(
              "unsupported protocol version 2 (client \"raw test peer\"); this supervisor "
              "speaks version 1"),
            std::string::npos)
    << *f;
  EXPECT_FALSE(p.next()); // then EOF
}

TEST_F(control_server_test, garbage_gets_an_error_frame_and_eof) {
  start();
  raw_peer p(server->socket_path());
  p.hello();
  ASSERT_TRUE(p.next()); // server hello
  p.send_bytes("GET / HTTP/1.1\r\n\r\n");
  auto f = p.next();
  ASSERT_TRUE(f);
  EXPECT_EQ((*f)["error"]["code"], "bad_frame");
  EXPECT_FALSE(p.next());
  EXPECT_TRUE(logged("not a calima control frame"));
}

TEST_F(control_server_test, oversize_frame_gets_an_error_frame_and_eof) {
  start();
  raw_peer p(server->socket_path());
  p.hello();
  ASSERT_TRUE(p.next());
  p.send_bytes(std::string("\x00\x20\x00\x00", 4)); // 2 MiB announced
  auto f = p.next();
  ASSERT_TRUE(f);
  EXPECT_EQ((*f)["error"]["code"], "bad_frame");
  EXPECT_NE((*f)["error"]["message"].get<std::string>().find("exceeds the maximum"),
            std::string::npos);
  EXPECT_FALSE(p.next());
}

TEST_F(control_server_test, pipelined_requests_unknown_ops_and_half_close) {
  std::promise<actors::responder_ptr> first;
  handler->set([&](protocol::request req, actors::responder_ptr out) {
    if (req.id == 1)
      first.set_value(out); // answered after request 2
    else
      out->ok(json{{"id_seen", req.id}});
  });
  start();
  raw_peer p(server->socket_path());
  p.hello();
  ASSERT_TRUE(p.next());
  p.send(json{{"id", 1}, {"op", "inspect"}, {"args", {{"name", "a"}}}});
  p.send(json{{"id", 1}, {"op", "ping"}});   // duplicate id while 1 is in flight
  p.send(json{{"id", 2}, {"op", "reboot"}}); // unknown op
  p.send(json{{"id", 3}, {"op", "ping"}});
  p.half_close(); // the server must still answer what is in flight
  auto f = p.next();
  ASSERT_TRUE(f);
  EXPECT_EQ(*f, json::parse(R"({"id":1,"ok":false,"error":{"code":"bad_request",)"
                            R"("message":"request id 1 is already in flight"}})"));
  f = p.next();
  ASSERT_TRUE(f);
  EXPECT_EQ((*f)["error"]["code"], "unknown_op");
  EXPECT_EQ((*f)["id"], 2);
  f = p.next();
  ASSERT_TRUE(f);
  EXPECT_EQ(*f, json::parse(R"({"id":3,"ok":true,"result":{"id_seen":3}})"));
  auto fut = first.get_future();
  ASSERT_EQ(fut.wait_for(patience), std::future_status::ready);
  fut.get()->ok(json{{"first", true}});
  f = p.next();
  ASSERT_TRUE(f);
  EXPECT_EQ(*f, json::parse(R"({"id":1,"ok":true,"result":{"first":true}})"));
  EXPECT_FALSE(p.next()); // nothing in flight after EOF: closed
}

TEST_F(control_server_test, request_without_id_closes_the_connection) {
  start();
  raw_peer p(server->socket_path());
  p.hello();
  ASSERT_TRUE(p.next());
  p.send(json{{"op", "ping"}});
  auto f = p.next();
  ASSERT_TRUE(f);
  EXPECT_EQ((*f)["error"]["code"], "bad_request");
  EXPECT_FALSE(f->contains("id"));
  EXPECT_FALSE(p.next());
}

// -- peers, stale and live sockets, shutdown ---------------------------------------------------

TEST_F(control_server_test, rejects_a_foreign_uid) {
  actors::control_server_options o;
  o.peer_uid = [](int) -> std::optional<uid_t> { return 12345; };
  start(o);
  try {
    connect_to(server->socket_path());
    FAIL() << "a foreign peer was accepted";
  } catch (const supervisor_call_error& e) {
    EXPECT_EQ(e.code(), "permission_denied");
    EXPECT_NE(std::string(e.what()).find("refused the connection: connection refused: uid 12345 "
                                         "may not control this supervisor, which runs as uid " +
                                         std::to_string(::geteuid())),
              std::string::npos)
      << e.what();
  }
  EXPECT_EQ(handler->calls(), 0);
  EXPECT_TRUE(logged("uid 12345 may not control"));
}

TEST_F(control_server_test, replaces_a_stale_socket) {
  auto dir = home.path() + "/_supervisor";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  auto path = dir + "/supervisor.sock";
  { // a crashed supervisor leaves its bound socket file behind
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ::close(fd);
  }
  ASSERT_TRUE(S_ISSOCK(mode_of(path)));
  EXPECT_THROW(connect_to(path), cli::supervisor_not_running);
  start();
  EXPECT_TRUE(logged("removing stale socket"));
  EXPECT_EQ(connect_to(path).call(protocol::op::ping), json({{"op", "ping"}}));
}

TEST_F(control_server_test, never_replaces_a_live_socket) {
  start();
  actors::control_server second(io, {home.path(), "second", {}, {}, 2000ms, {}}, handler);
  try {
    second.listen();
    FAIL() << "a second server took over a live socket";
  } catch (const actors::control_server_error& e) {
    EXPECT_EQ(std::string(e.what()),
              "another calima supervisor is already listening on " + server->socket_path());
  }
  // The first server is untouched and its socket still there.
  auto c = connect_to(server->socket_path());
  EXPECT_EQ(c.server().server, "calima-supervisor test");
  EXPECT_EQ(c.call(protocol::op::ping), json({{"op", "ping"}}));
}

TEST_F(control_server_test, stop_answers_in_flight_requests_and_removes_the_socket) {
  std::promise<void> parked_promise;
  actors::responder_ptr parked;
  handler->set([&](protocol::request, actors::responder_ptr out) {
    parked = std::move(out);
    parked_promise.set_value();
  });
  start();
  auto path = server->socket_path();
  auto call = std::async(std::launch::async, [&] {
    auto c = connect_to(path);
    try {
      c.call(protocol::op::start, json{{"name", "a"}}, {}, patience);
      return std::string("answered");
    } catch (const supervisor_call_error& e) {
      return e.code() + ": " + e.what();
    }
  });
  ASSERT_EQ(parked_promise.get_future().wait_for(patience), std::future_status::ready);
  on_io([&] { server->stop(); });
  ASSERT_EQ(call.wait_for(patience), std::future_status::ready);
  EXPECT_EQ(call.get(), "shutting_down: the supervisor is shutting down");
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::symlink_status(path)));
  on_io([&] { parked->ok(); }); // too late: ignored
  on_io([&] { parked.reset(); });
  // Every connection closes and the io context runs dry once the work guard is gone.
  work.reset();
  io_thread.join();
  EXPECT_EQ(server->connection_count(), 0u);
  EXPECT_THROW(connect_to(path), cli::supervisor_not_running);
}
