// Argument checks shared by reenact's small N-API addons (the mesh warp, the face crop, the
// watermark embedder): a wrong argument throws a TypeError naming it instead of reading past a buffer.
#pragma once
#include <node_api.h>

#include <cstdint>
#include <string>

// A hot loop built twice, for x86-64's baseline and for AVX2 (with SSE4.1's rounding instructions
// and three-operand forms), the one for the CPU at hand chosen when the addon loads. No FMA: the
// addons are built with -ffp-contract=off, so both give the same bits.
#define REENACT_HOT_LOOP __attribute__((target_clones("avx2", "default")))

namespace reenact {

struct ArgError {
  std::string message;
};

template <typename T>
T *typed(napi_env env, napi_value value, napi_typedarray_type want, const char *kind, const char *name, size_t *length) {
  bool isTyped = false;
  napi_is_typedarray(env, value, &isTyped);
  napi_typedarray_type type;
  void *data = nullptr;
  if (isTyped) napi_get_typedarray_info(env, value, &type, length, &data, nullptr, nullptr);
  if (!isTyped || type != want) throw ArgError{std::string(name) + " must be a " + kind};
  return static_cast<T *>(data);
}

inline int integer(napi_env env, napi_value value, const char *name) {
  int32_t result;
  if (napi_get_value_int32(env, value, &result) != napi_ok) throw ArgError{std::string(name) + " must be a number"};
  return result;
}

inline double number(napi_env env, napi_value value, const char *name) {
  double result;
  if (napi_get_value_double(env, value, &result) != napi_ok) throw ArgError{std::string(name) + " must be a number"};
  return result;
}

// An addon function's body, run so that an ArgError becomes a TypeError for the caller.
template <typename Body>
napi_value checked(napi_env env, Body body) {
  try {
    body();
  } catch (const ArgError &error) {
    napi_throw_type_error(env, nullptr, error.message.c_str());
  }
  return nullptr;
}

inline void exportFunction(napi_env env, napi_value exports, const char *name, napi_callback callback) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, callback, nullptr, &fn);
  napi_set_named_property(env, exports, name, fn);
}

}  // namespace reenact
