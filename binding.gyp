{
  "targets": [
    {
      "target_name": "fomm_decoder",
      "sources": ["src/fomm/native/kernels.cc", "src/fomm/native/binding.cc"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++20", "-O3", "-fexceptions"],
      "conditions": [["target_arch!='x64'", {"type": "none"}]]
    },
    {
      "target_name": "mesh_warp",
      "sources": ["src/mesh/native/warp.cc"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++20", "-O3", "-fexceptions", "-ffp-contract=off"],
      "conditions": [["target_arch!='x64'", {"type": "none"}]]
    },
    {
      "target_name": "face_crop",
      "sources": ["src/face/native/crop.cc"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++20", "-O3", "-fexceptions", "-ffp-contract=off"],
      "conditions": [["target_arch!='x64'", {"type": "none"}]]
    },
    {
      "target_name": "watermark_embed",
      "sources": ["src/provenance/native/embed.cc"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++20", "-O3", "-fexceptions", "-ffp-contract=off"],
      "conditions": [["target_arch!='x64'", {"type": "none"}]]
    }
  ]
}
