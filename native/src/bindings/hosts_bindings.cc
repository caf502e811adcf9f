// JS binding of the cross-host collective: hostsCollective(communicator, { firstRank,
// hostFirstRanks, link? }) → an object the executor steps accept wherever they take a
// communicator. On the host's leader, `link: { endpoint, leaders, run }` exchanges natively with
// the other leaders (hosts/grpc_host_link.h; `endpoint` from hostEndpoint({ address, token?,
// tls? })); the other ranks of the host need none.
#include <napi.h>

#include <algorithm>
#include <memory>

#include "bindings/credentials_js.h"
#include "core/module_registry.h"
#include "core/napi_util.h"
#include "executor/hosts_collective.h"
#include "hosts/grpc_host_link.h"
#include "ucx/ucx_loader.h"

namespace redblue {

std::shared_ptr<shm::Communicator> CommunicatorFromJs(Napi::Value v);  // bindings/shm_bindings.cc

namespace {

const napi_type_tag kCollectiveTag = {0x72656462'6c756521ull, 0x686f7374'73436f6cull};
const napi_type_tag kEndpointTag = {0x72656462'6c756521ull, 0x6c656164'6572456eull};

// What a hostEndpoint() object holds: this leader's gRPC end and, with `ucx`, its UCX worker;
// emptied by close(), shared with the close function.
struct EndpointSlot {
  std::shared_ptr<data::LeaderEndpoint> grpc;
  std::shared_ptr<ucx::LoadedWorker> ucx;
};

EndpointSlot EndpointFromJs(Napi::Value v) {
  Napi::Value ext = v.IsObject() ? v.As<Napi::Object>().Get("endpoint") : v;
  bool tagged = false;
  if (!ext.IsExternal() || napi_check_object_type_tag(v.Env(), ext, &kEndpointTag, &tagged) != napi_ok || !tagged)
    throw Napi::TypeError::New(v.Env(), "link.endpoint must come from hostEndpoint()");
  auto ep = **ext.As<Napi::External<std::shared_ptr<EndpointSlot>>>().Data();
  if (!ep.grpc) throw Napi::Error::New(v.Env(), "the host endpoint is closed");
  return ep;
}

// hostEndpoint({ address, token?, tls?, ucx? }) → { port, ucxAddress?, endpoint, close() }: this
// leader's end of the native link between host leaders, serving at once; with `ucx`, also a UCX
// worker whose address the peers reach it by.
Napi::Value JsHostEndpoint(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  if (!o.Get("address").IsString()) throw Napi::TypeError::New(env, "address must be a host:port string");
  data::Credentials creds = CredentialsFromJs(o);
  EndpointSlot ep;
  try {
    ep.grpc = std::make_shared<data::LeaderEndpoint>(o.Get("address").As<Napi::String>().Utf8Value(), creds);
    if (o.Get("ucx").ToBoolean()) ep.ucx = ucx::LoadedWorker::Create();
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
  auto slot = std::make_shared<EndpointSlot>(ep);
  auto ext = Napi::External<std::shared_ptr<EndpointSlot>>::New(
      env, new std::shared_ptr<EndpointSlot>(slot), [](Napi::Env, std::shared_ptr<EndpointSlot>* p) { delete p; });
  napi_type_tag_object(env, ext, &kEndpointTag);
  Napi::Object wrapper = Napi::Object::New(env);
  wrapper.Set("endpoint", ext);
  wrapper.Set("port", ep.grpc->port());
  if (ep.ucx)
    wrapper.Set("ucxAddress", Napi::Buffer<uint8_t>::Copy(env, ep.ucx->address().data(), ep.ucx->address().size()));
  wrapper.Set("close", Napi::Function::New(env, [slot](const Napi::CallbackInfo& i) {
                // Runs still holding the endpoint keep it; new ones are refused.
                if (slot->grpc) slot->grpc->Shutdown();
                *slot = EndpointSlot{};
                return i.Env().Undefined();
              }));
  return wrapper;
}

// hostsCollective(communicator, { firstRank, hostFirstRanks, link?, timeoutMs? })
Napi::Value JsHostsCollective(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto local = CommunicatorFromJs(info[0]);
  if (info.Length() < 2 || !info[1].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
  Napi::Object o = info[1].As<Napi::Object>();
  Napi::Value fr = o.Get("firstRank");
  if (!fr.IsNumber() || fr.As<Napi::Number>().Int64Value() < 0)
    throw Napi::TypeError::New(env, "firstRank must be a non-negative integer");
  Napi::Value hv = o.Get("hostFirstRanks");
  if (!hv.IsArray()) throw Napi::TypeError::New(env, "hostFirstRanks must be an array");
  std::vector<int> hostFirst;
  Napi::Array ha = hv.As<Napi::Array>();
  if (ha.Length() < 2 || ha.Length() > 4097) throw UserError("hostFirstRanks must have 2 to 4097 entries");
  for (uint32_t i = 0; i < ha.Length(); ++i) {
    Napi::Value v = ha.Get(i);
    if (!v.IsNumber() || v.As<Napi::Number>().Int64Value() < 0 || v.As<Napi::Number>().Int64Value() > 1 << 20)
      throw Napi::TypeError::New(env, "hostFirstRanks must contain rank numbers");
    hostFirst.push_back(static_cast<int>(v.As<Napi::Number>().Int64Value()));
  }
  int64_t timeoutMs = 120000;
  Napi::Value tv = o.Get("timeoutMs");
  if (tv.IsNumber()) timeoutMs = std::max<int64_t>(1, tv.As<Napi::Number>().Int64Value());
  std::shared_ptr<HostLink> link;
  Napi::Value lv = o.Get("link");
  if (local->rank() == 0 && lv.IsObject()) {
    Napi::Object l = lv.As<Napi::Object>();
    auto ep = EndpointFromJs(l);
    Napi::Value leaders = l.Get("leaders");
    if (!leaders.IsArray()) throw Napi::TypeError::New(env, "link.leaders must list every host's leader address");
    std::vector<std::string> addresses;
    Napi::Array la = leaders.As<Napi::Array>();
    for (uint32_t i = 0; i < la.Length(); ++i) {
      if (!la.Get(i).IsString()) throw Napi::TypeError::New(env, "link.leaders must contain host:port strings");
      addresses.push_back(la.Get(i).As<Napi::String>().Utf8Value());
    }
    if (addresses.size() + 1 != hostFirst.size())
      throw UserError("link.leaders names " + std::to_string(addresses.size()) + " hosts, hostFirstRanks " +
                      std::to_string(hostFirst.size() - 1));
    if (!l.Get("run").IsString()) throw Napi::TypeError::New(env, "link.run must name the run");
    int host = -1;
    const int first = static_cast<int>(fr.As<Napi::Number>().Int64Value());
    for (size_t h = 0; h + 1 < hostFirst.size(); ++h)
      if (hostFirst[h] == first) host = static_cast<int>(h);
    if (host < 0) throw UserError("no host in hostFirstRanks starts at rank " + std::to_string(first));
    // With every leader's UCX address (and a worker here), the exchange runs over UCX.
    std::vector<std::vector<uint8_t>> ucxPeers;
    Napi::Value uv = l.Get("ucxLeaders");
    if (uv.IsArray()) {
      Napi::Array ua = uv.As<Napi::Array>();
      if (ua.Length() != addresses.size())
        throw UserError("link.ucxLeaders must give every host's leader UCX address");
      for (uint32_t i = 0; i < ua.Length(); ++i) {
        if (!ua.Get(i).IsBuffer()) throw Napi::TypeError::New(env, "link.ucxLeaders must contain Buffers");
        auto b = ua.Get(i).As<Napi::Buffer<uint8_t>>();
        ucxPeers.emplace_back(b.Data(), b.Data() + b.Length());
      }
      if (!ep.ucx) throw UserError("this leader has no UCX worker: open its endpoint with ucx");
    }
    try {
      const std::string run = l.Get("run").As<Napi::String>().Utf8Value();
      if (!ucxPeers.empty())
        link = ucx::MakeLink(ep.ucx, run, host, ucxPeers, static_cast<uint64_t>(timeoutMs));
      else
        link = std::make_shared<data::GrpcHostLink>(ep.grpc, run, host, std::move(addresses),
                                                    static_cast<uint64_t>(timeoutMs));
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, e.what());
    }
  } else if (local->rank() == 0) {
    throw Napi::TypeError::New(env, "the host leader (local rank 0) needs a link to the other leaders");
  }
  auto coll = std::make_shared<HostsCollective>(local, static_cast<int>(fr.As<Napi::Number>().Int64Value()),
                                                std::move(hostFirst), std::move(link));
  auto* holder = new std::shared_ptr<Collective>(coll);
  auto ext = Napi::External<std::shared_ptr<Collective>>::New(
      env, holder, [](Napi::Env, std::shared_ptr<Collective>* p) { delete p; });
  napi_type_tag_object(env, ext, &kCollectiveTag);
  Napi::Object wrapper = Napi::Object::New(env);
  wrapper.Set("collective", ext);
  wrapper.Set("rank", coll->rank());
  wrapper.Set("size", coll->size());
  return wrapper;
}

// ucxBytesSent() → bytes this process has sent to other leaders over UCX.
Napi::Value JsUcxBytesSent(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(ucx::BytesSent()));
}

// ucxAbortExchanges(): the executor is stopping; a UCX exchange still waiting ends now.
Napi::Value JsUcxAbortExchanges(const Napi::CallbackInfo& info) {
  ucx::AbortExchanges();
  return info.Env().Undefined();
}

void InitHosts(Napi::Env /*env*/, Napi::Object exports) {
  REDBLUE_EXPORT(exports, "ucxBytesSent", JsUcxBytesSent);
  REDBLUE_EXPORT(exports, "ucxAbortExchanges", JsUcxAbortExchanges);
  REDBLUE_EXPORT(exports, "hostsCollective", JsHostsCollective);
  REDBLUE_EXPORT(exports, "hostEndpoint", JsHostEndpoint);
}

}  // namespace

// A collective made by hostsCollective(), or null for anything else.
std::shared_ptr<Collective> ExternalCollectiveFromJs(Napi::Value v) {
  if (!v.IsObject()) return nullptr;
  Napi::Value ext = v.As<Napi::Object>().Get("collective");
  if (!ext.IsExternal()) return nullptr;
  bool tagged = false;
  if (napi_check_object_type_tag(v.Env(), ext, &kCollectiveTag, &tagged) != napi_ok || !tagged) return nullptr;
  return *ext.As<Napi::External<std::shared_ptr<Collective>>>().Data();
}

REDBLUE_MODULE(InitHosts);
}  // namespace redblue
