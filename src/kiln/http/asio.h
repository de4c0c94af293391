// The Asio and Beast headers the server core uses, included once here. GCC's -Wnull-dereference
// reports false positives inside Asio's type-erased executors (any_executor's equality and
// shared_ptr copies after inlining); they are silenced for these headers only.
#pragma once

#include <ostream>  // boost/core/string_view.hpp needs the complete std::ostream

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/file_body.hpp>
#pragma GCC diagnostic pop
