#include "hosts/credentials.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <stdexcept>

namespace redblue::data {

namespace {
void CheckComplete(const Credentials& c) {
  if (c.tls() && (c.key.empty() || c.ca.empty()))
    throw std::runtime_error("TLS needs the certificate, its key and the CA (all three PEM files)");
}
}  // namespace

std::shared_ptr<grpc::ServerCredentials> ServerCredentialsFor(const Credentials& c) {
  CheckComplete(c);
  if (!c.tls()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions o(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  o.pem_root_certs = c.ca;
  o.pem_key_cert_pairs.push_back({c.key, c.cert});
  return grpc::SslServerCredentials(o);
}

std::shared_ptr<grpc::ChannelCredentials> ChannelCredentialsFor(const Credentials& c, grpc::ChannelArguments& args) {
  CheckComplete(c);
  if (!c.tls()) return grpc::InsecureChannelCredentials();
  args.SetSslTargetNameOverride(kTlsServerName);
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = c.ca;
  o.pem_private_key = c.key;
  o.pem_cert_chain = c.cert;
  return grpc::SslCredentials(o);
}

}  // namespace redblue::data
