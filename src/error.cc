#include "error.h"

#include <nghttp2/nghttp2.h>

namespace h2pool_core {

const char *error_text(int code) {
  switch (code) {
  case H2POOL_OK:
    return "success";
  case H2POOL_ERR_INVALID_ARGUMENT:
    return "invalid argument";
  case H2POOL_ERR_NOMEM:
    return "out of memory";
  case H2POOL_ERR_INVALID_URL:
    return "invalid URL";
  case H2POOL_ERR_UNSUPPORTED_SCHEME:
    return "unsupported URL scheme";
  case H2POOL_ERR_INVALID_HEADER:
    return "invalid request header";
  case H2POOL_ERR_INVALID_METHOD:
    return "invalid request method";
  case H2POOL_ERR_QUEUE_FULL:
    return "too many pending requests";
  case H2POOL_ERR_POOL_CLOSED:
    return "pool closed";
  case H2POOL_ERR_RESOLVE:
    return "host name could not be resolved";
  case H2POOL_ERR_CONNECT:
    return "connection failed";
  case H2POOL_ERR_CONNECT_TIMEOUT:
    return "connect timed out";
  case H2POOL_ERR_SETTINGS_TIMEOUT:
    return "server did not send HTTP/2 SETTINGS in time";
  case H2POOL_ERR_TIMEOUT:
    return "request timed out";
  case H2POOL_ERR_CANCELLED:
    return "request cancelled";
  case H2POOL_ERR_CONNECTION_LOST:
    return "connection lost";
  case H2POOL_ERR_GOAWAY:
    return "server sent GOAWAY";
  case H2POOL_ERR_STREAM_RESET:
    return "stream reset by server";
  case H2POOL_ERR_REFUSED_STREAM:
    return "stream refused by server";
  case H2POOL_ERR_PROTOCOL:
    return "HTTP/2 protocol error";
  case H2POOL_ERR_NOT_SUPPORTED:
    return "not supported";
  case H2POOL_ERR_RESPONSE_TOO_LARGE:
    return "response exceeds a configured limit";
  case H2POOL_ERR_WRONG_THREAD:
    return "called from a thread where this is not allowed";
  case H2POOL_ERR_SYSTEM:
    return "system call failed";
  case H2POOL_ERR_INTERNAL:
    return "internal error";
  case H2POOL_ERR_TLS_CONFIG:
    return "TLS configuration cannot be loaded";
  case H2POOL_ERR_TLS_HANDSHAKE:
    return "TLS handshake failed";
  case H2POOL_ERR_TLS_VERIFY:
    return "TLS certificate verification failed";
  case H2POOL_ERR_TLS_ALPN:
    return "server did not select the required protocol in ALPN";
  case H2POOL_ERR_TLS_HANDSHAKE_TIMEOUT:
    return "TLS handshake timed out";
  case H2POOL_ERR_RESPONSE_HEADERS_TIMEOUT:
    return "response headers did not arrive in time";
  case H2POOL_ERR_DECOMPRESSION_BOMB:
    return "decompressed response exceeds a limit";
  case H2POOL_ERR_DECODE:
    return "response content-encoding is corrupt";
  case H2POOL_ERR_ABORTED:
    return "aborted by a streaming callback";
  case H2POOL_ERR_BODY_SOURCE:
    return "request body source failed";
  case H2POOL_ERR_RESOLVE_TIMEOUT:
    return "host name lookup timed out";
  case H2POOL_ERR_QUEUE_CLOSED:
    return "completion queue is shut down";
  case H2POOL_ERR_NO_SUCH_REQUEST:
    return "no such request under way";
  case H2POOL_ERR_MALFORMED_RESPONSE:
    return "malformed HTTP/1.1 response";
  case H2POOL_ERR_HEADER_SECTION_TOO_LARGE:
    return "HTTP/1.1 response header section too large";
  case H2POOL_ERR_INCOMPLETE_RESPONSE:
    return "connection closed before the response was complete";
  case H2POOL_ERR_PROXY_CONNECT:
    return "cannot reach the proxy";
  case H2POOL_ERR_PROXY_AUTH:
    return "proxy authentication failed";
  case H2POOL_ERR_PROXY_REFUSED:
    return "proxy refused to open the tunnel";
  case H2POOL_ERR_PROXY_CLOSED:
    return "proxy closed the connection during tunnel setup";
  case H2POOL_ERR_PROXY_PROTOCOL:
    return "proxy sent a malformed reply";
  case H2POOL_ERR_CONNECT_PROTOCOL_UNSUPPORTED:
    return "server does not support extended CONNECT";
  default:
    return "unknown error";
  }
}

Error make_error(int code, std::string message) {
  Error e;
  e.code = code;
  e.message = message.empty() ? error_text(code) : std::move(message);
  return e;
}

const char *http2_code_name(uint32_t code) {
  switch (code) {
  case NGHTTP2_NO_ERROR:
    return "NO_ERROR";
  case NGHTTP2_PROTOCOL_ERROR:
    return "PROTOCOL_ERROR";
  case NGHTTP2_INTERNAL_ERROR:
    return "INTERNAL_ERROR";
  case NGHTTP2_FLOW_CONTROL_ERROR:
    return "FLOW_CONTROL_ERROR";
  case NGHTTP2_SETTINGS_TIMEOUT:
    return "SETTINGS_TIMEOUT";
  case NGHTTP2_STREAM_CLOSED:
    return "STREAM_CLOSED";
  case NGHTTP2_FRAME_SIZE_ERROR:
    return "FRAME_SIZE_ERROR";
  case NGHTTP2_REFUSED_STREAM:
    return "REFUSED_STREAM";
  case NGHTTP2_CANCEL:
    return "CANCEL";
  case NGHTTP2_COMPRESSION_ERROR:
    return "COMPRESSION_ERROR";
  case NGHTTP2_CONNECT_ERROR:
    return "CONNECT_ERROR";
  case NGHTTP2_ENHANCE_YOUR_CALM:
    return "ENHANCE_YOUR_CALM";
  case NGHTTP2_INADEQUATE_SECURITY:
    return "INADEQUATE_SECURITY";
  case NGHTTP2_HTTP_1_1_REQUIRED:
    return "HTTP_1_1_REQUIRED";
  default:
    return "unknown";
  }
}

} // namespace h2pool_core
