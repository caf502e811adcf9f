// Who may call a host's data path and how the bytes are protected: the shared token (checked on
// every call) and/or TLS with the cluster certificate (servers require a client certificate
// signed by the same CA), exactly as the Host service (transport/grpc-data.ts) does, so that one
// set of files secures both and bulk data never needs a second, slower path.
#pragma once
#include <memory>
#include <string>

namespace grpc {
class ServerCredentials;
class ChannelCredentials;
class ChannelArguments;
}  // namespace grpc

namespace redblue::data {

struct Credentials {
  std::string token;  // empty: none
  // PEM text of the cluster certificate, its key and the CA; all empty: no TLS.
  std::string cert, key, ca;
  bool tls() const { return !cert.empty(); }
};

// The name every host's certificate carries (one cluster certificate serves all hosts): clients
// check the server's certificate against it, not against the address they dialled.
constexpr const char* kTlsServerName = "redblue";

std::shared_ptr<grpc::ServerCredentials> ServerCredentialsFor(const Credentials& c);
// Channel credentials, and the arguments TLS needs on the channel (the server name override).
std::shared_ptr<grpc::ChannelCredentials> ChannelCredentialsFor(const Credentials& c, grpc::ChannelArguments& args);

}  // namespace redblue::data
