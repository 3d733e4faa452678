{
  "targets": [
    {
      "target_name": "fomm_bottleneck",
      "sources": ["src/fomm/native/bottleneck.cc"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++20", "-O3", "-fexceptions"],
      "conditions": [["target_arch!='x64'", {"type": "none"}]]
    }
  ]
}
