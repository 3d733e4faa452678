// The N-API binding of the decoder's kernels (kernels.cc): checks the arguments JavaScript passes
// (src/fomm/native/decoder.ts), then runs decode on the calling thread or on the libuv pool.
#include <node_api.h>

#include <exception>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "kernels.h"

namespace {

using namespace fomm;

struct ArgError {
  std::string message;
};

float *floats(napi_env env, napi_value value, size_t expected, const char *name) {
  bool isTyped = false;
  napi_is_typedarray(env, value, &isTyped);
  if (!isTyped) throw ArgError{std::string(name) + " must be a Float32Array"};
  napi_typedarray_type type;
  size_t length;
  void *data;
  napi_get_typedarray_info(env, value, &type, &length, &data, nullptr, nullptr);
  if (type != napi_float32_array) throw ArgError{std::string(name) + " must be a Float32Array"};
  if (length != expected) throw ArgError{std::string(name) + " has " + std::to_string(length) + " values, expected " + std::to_string(expected)};
  return static_cast<float *>(data);
}

int integer(napi_env env, napi_value value, const char *name) {
  int32_t result;
  if (napi_get_value_int32(env, value, &result) != napi_ok) throw ArgError{std::string(name) + " must be a number"};
  return result;
}

napi_value property(napi_env env, napi_value object, const char *name) {
  napi_value result;
  napi_get_named_property(env, object, name, &result);
  return result;
}

int integerProperty(napi_env env, napi_value object, const char *name) {
  return integer(env, property(env, object, name), name);
}

// Reads and checks a decode's arguments from JavaScript values: shape { channels, height, width,
// threads }, bottleneck { m, BT, AT, blocks: [{ scale, shift, u1, bias1, u2, bias2 }] },
// upBlocks [{ in, out, m, BT, AT, u, bias }].
Request parseRequest(napi_env env, napi_value shape, napi_value bottleneck, napi_value upBlocks) {
  if (!cpuSupported()) throw ArgError{"this CPU has no AVX2/FMA"};
  Request r;
  const int channels = integerProperty(env, shape, "channels");
  const int height = integerProperty(env, shape, "height");
  const int width = integerProperty(env, shape, "width");
  r.threads = integerProperty(env, shape, "threads");
  if (channels <= 0 || channels % kCols != 0) throw ArgError{"channels must be a positive multiple of 16"};
  if (height <= 0 || width <= 0 || height > 4096 || width > 4096) throw ArgError{"height and width must be 1 to 4096"};
  if (r.threads < 1 || r.threads > 256) throw ArgError{"threads must be 1 to 256"};
  // Matrices of F(m×m, 3×3), checked for the Cook–Toom pair structure the transforms rely on.
  auto matrices = [&](napi_value object, int &m) {
    m = integerProperty(env, object, "m");
    if (m != 4 && m != 8) throw ArgError{"m must be 4 or 8"};
    const size_t n = m + 2;
    const float *BT = floats(env, property(env, object, "BT"), n * n, "BT");
    const float *AT = floats(env, property(env, object, "AT"), m * n, "AT");
    if (!pairedStructure(BT, AT, n)) throw ArgError{"BT and AT must be Cook-Toom matrices of the points 0, +-p..., infinity"};
    return std::make_pair(BT, AT);
  };
  int m;
  auto [BT, AT] = matrices(bottleneck, m);
  r.convs.emplace_back(channels, channels, height, width, m, BT, AT);
  const size_t c = channels, freqs = static_cast<size_t>(m + 2) * (m + 2);
  napi_value list = property(env, bottleneck, "blocks");
  uint32_t count;
  if (napi_get_array_length(env, list, &count) != napi_ok) throw ArgError{"blocks must be an array"};
  for (uint32_t i = 0; i < count; i++) {
    napi_value b;
    napi_get_element(env, list, i, &b);
    r.blocks.push_back({
        floats(env, property(env, b, "scale"), c, "scale"), floats(env, property(env, b, "shift"), c, "shift"),
        floats(env, property(env, b, "u1"), freqs * c * c, "u1"), floats(env, property(env, b, "bias1"), c, "bias1"),
        floats(env, property(env, b, "u2"), freqs * c * c, "u2"), floats(env, property(env, b, "bias2"), c, "bias2"),
    });
  }
  if (napi_get_array_length(env, upBlocks, &count) != napi_ok) throw ArgError{"upBlocks must be an array"};
  int in = channels, h = height, w = width;
  for (uint32_t i = 0; i < count; i++) {
    napi_value b;
    napi_get_element(env, upBlocks, i, &b);
    UpBlock up{};
    up.in = integerProperty(env, b, "in");
    up.out = integerProperty(env, b, "out");
    int upM;
    if (up.in != in) throw ArgError{"up block " + std::to_string(i) + " takes " + std::to_string(up.in) + " channels, but gets " + std::to_string(in)};
    if (up.out <= 0 || up.out % 32 != 0) throw ArgError{"an up block's outputs must be a positive multiple of 32 (4 phases of 8 channels)"};
    if (i > 0) h *= 2, w *= 2;
    if (h > 4096 || w > 4096) throw ArgError{"up blocks would make maps larger than 4096"};
    auto [upBT, upAT] = matrices(b, upM);
    up.u = floats(env, property(env, b, "u"), static_cast<size_t>(upM + 2) * (upM + 2) * up.in * up.out, "u");
    up.bias = floats(env, property(env, b, "bias"), up.out, "bias");
    r.convs.emplace_back(up.in, up.out, h, w, upM, upBT, upAT);
    r.upWeights.push_back(up);
    in = up.out / 4;
  }
  r.inputSize = c * height * width;
  r.outputSize = count ? static_cast<size_t>(r.upWeights.back().out) * h * w : r.inputSize;
  return r;
}

// A JavaScript call of Count arguments: fn(argv)'s value, or a TypeError for an ArgError.
template <size_t Count, typename Fn>
napi_value call(napi_env env, napi_callback_info info, const char *usage, Fn fn) {
  size_t argc = Count;
  napi_value argv[Count];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  try {
    if (argc != Count) throw ArgError{usage};
    return fn(argv);
  } catch (const ArgError &e) {
    napi_throw_type_error(env, nullptr, e.message.c_str());
    return nullptr;
  }
}

// workspaceLength(shape, bottleneck, upBlocks): the floats decode's workspace must have.
napi_value WorkspaceLength(napi_env env, napi_callback_info info) {
  return call<3>(env, info, "workspaceLength takes (shape, bottleneck, upBlocks)", [&](napi_value *argv) {
    napi_value result;
    napi_create_double(env, static_cast<double>(Workspace(parseRequest(env, argv[0], argv[1], argv[2])).total), &result);
    return result;
  });
}

// The workspaces of decodes running on the thread pool: each is the scratch of one decode at a
// time, so another decode on it (synchronous or not) is refused until that one completes.
std::mutex busyMutex;
std::set<const float *> busyWorkspaces;

bool workspaceBusy(const float *workspace) {
  std::lock_guard<std::mutex> lock(busyMutex);
  return busyWorkspaces.count(workspace) != 0;
}

// One decode's checked arguments and the buffers it reads and writes.
struct DecodeCall {
  Request request;
  const float *input;
  float *output;
  float *workspace;
};

DecodeCall parseCall(napi_env env, napi_value *argv) {
  DecodeCall c{parseRequest(env, argv[3], argv[4], argv[5]), nullptr, nullptr, nullptr};
  c.input = floats(env, argv[0], c.request.inputSize, "input");
  c.output = floats(env, argv[1], c.request.outputSize, "output");
  c.workspace = floats(env, argv[2], Workspace(c.request).total, "workspace");
  if (workspaceBusy(c.workspace)) throw ArgError{"workspace is in use by a decode that has not completed"};
  return c;
}

constexpr const char *kDecodeUsage = "decode takes (input, output, workspace, shape, bottleneck, upBlocks)";

// decode(input, output, workspace, shape, bottleneck, upBlocks) on the calling (JavaScript)
// thread; workspace zeroed before its first use.
napi_value Decode(napi_env env, napi_callback_info info) {
  return call<6>(env, info, kDecodeUsage, [&](napi_value *argv) -> napi_value {
    const DecodeCall c = parseCall(env, argv);
    decode(c.request, c.input, c.output, c.workspace);
    return nullptr;
  });
}

// A decode on the libuv thread pool. References keep the six arguments (and so every typed
// array they hold) alive until it completes; the workspace is marked busy meanwhile.
struct AsyncDecode {
  DecodeCall call;
  napi_ref refs[6];
  napi_deferred deferred;
  napi_async_work work;
  std::string error;
};

void ExecuteDecode(napi_env, void *data) {
  auto *job = static_cast<AsyncDecode *>(data);
  try {
    decode(job->call.request, job->call.input, job->call.output, job->call.workspace);
  } catch (const std::exception &e) {  // std::thread's system_error when threads cannot start
    job->error = e.what();
  }
}

void CompleteDecode(napi_env env, napi_status status, void *data) {
  auto *job = static_cast<AsyncDecode *>(data);
  {
    std::lock_guard<std::mutex> lock(busyMutex);
    busyWorkspaces.erase(job->call.workspace);
  }
  for (napi_ref ref : job->refs) napi_delete_reference(env, ref);
  napi_delete_async_work(env, job->work);
  if (status == napi_ok && job->error.empty()) {
    napi_value undefined;
    napi_get_undefined(env, &undefined);
    napi_resolve_deferred(env, job->deferred, undefined);
  } else {
    napi_value message, error;
    const std::string text = "native decode failed: " + (job->error.empty() ? std::string("cancelled") : job->error);
    napi_create_string_utf8(env, text.c_str(), text.size(), &message);
    napi_create_error(env, nullptr, message, &error);
    napi_reject_deferred(env, job->deferred, error);
  }
  delete job;
}

// decodeAsync(input, output, workspace, shape, bottleneck, upBlocks): the same decode off the
// JavaScript thread, so the event loop keeps running; a promise settled when output is written.
// Bad arguments throw at once, as decode's do. The arguments must not change until it settles.
napi_value DecodeAsync(napi_env env, napi_callback_info info) {
  return call<6>(env, info, kDecodeUsage, [&](napi_value *argv) -> napi_value {
    auto *job = new AsyncDecode{parseCall(env, argv), {}, nullptr, nullptr, {}};
    {
      std::lock_guard<std::mutex> lock(busyMutex);
      busyWorkspaces.insert(job->call.workspace);
    }
    for (int i = 0; i < 6; i++) napi_create_reference(env, argv[i], 1, &job->refs[i]);
    napi_value promise, name;
    napi_create_promise(env, &job->deferred, &promise);
    napi_create_string_utf8(env, "fomm_decoder.decodeAsync", NAPI_AUTO_LENGTH, &name);
    napi_create_async_work(env, nullptr, name, ExecuteDecode, CompleteDecode, job, &job->work);
    napi_queue_async_work(env, job->work);
    return promise;
  });
}

napi_value Supported(napi_env env, napi_callback_info) {
  napi_value result;
  napi_get_boolean(env, cpuSupported(), &result);
  return result;
}

// Bumped whenever decode's arguments change: JavaScript refuses a module built from other sources.
constexpr int kInterfaceVersion = 2;

napi_value Init(napi_env env, napi_value exports) {
  napi_value version;
  napi_create_int32(env, kInterfaceVersion, &version);
  napi_property_descriptor props[] = {
      {"interfaceVersion", nullptr, nullptr, nullptr, nullptr, version, napi_enumerable, nullptr},
      {"decode", nullptr, Decode, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"decodeAsync", nullptr, DecodeAsync, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"workspaceLength", nullptr, WorkspaceLength, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"supported", nullptr, Supported, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, 5, props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
