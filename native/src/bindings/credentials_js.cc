#include "bindings/credentials_js.h"

#include <string>

namespace redblue {

namespace {
std::string Pem(const Napi::Object& tls, const char* key) {
  Napi::Value v = tls.Get(key);
  if (v.IsString()) return v.As<Napi::String>().Utf8Value();
  if (v.IsBuffer()) {
    auto b = v.As<Napi::Buffer<char>>();
    return std::string(b.Data(), b.Length());
  }
  throw Napi::TypeError::New(tls.Env(), std::string("tls.") + key + " must be PEM text (a string or a Buffer)");
}
}  // namespace

data::Credentials CredentialsFromJs(const Napi::Object& o) {
  data::Credentials c;
  Napi::Value t = o.Get("token");
  if (t.IsString()) c.token = t.As<Napi::String>().Utf8Value();
  else if (!t.IsUndefined()) throw Napi::TypeError::New(o.Env(), "token must be a string");
  Napi::Value tls = o.Get("tls");
  if (tls.IsObject()) {
    Napi::Object x = tls.As<Napi::Object>();
    c.cert = Pem(x, "cert");
    c.key = Pem(x, "key");
    c.ca = Pem(x, "ca");
    if (c.cert.empty() || c.key.empty() || c.ca.empty())
      throw Napi::TypeError::New(o.Env(), "tls needs cert, key and ca, none of them empty");
  } else if (!tls.IsUndefined()) {
    throw Napi::TypeError::New(o.Env(), "tls must be an object { cert, key, ca }");
  }
  return c;
}

}  // namespace redblue
