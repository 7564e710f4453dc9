// Helpers shared by the fuzz targets: per-process scratch files in /dev/shm
// (tmpfs, so writing the input each iteration stays cheap).
#ifndef TRANSFORMER_SERVING_TESTS_FUZZ_FUZZ_UTIL_H_
#define TRANSFORMER_SERVING_TESTS_FUZZ_FUZZ_UTIL_H_

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace ts::fuzz {

// A directory private to this process, removed at exit.
inline std::string* scratch_dir = nullptr;

inline const std::string& ScratchDir() {
  if (scratch_dir == nullptr) {
    namespace fs = std::filesystem;
    const fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm")
                                                 : fs::temp_directory_path();
    std::string pattern = (base / "ts_fuzz_XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    scratch_dir = new std::string(pattern);
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(*scratch_dir, ignored);
    });
  }
  return *scratch_dir;
}

// Writes `size` bytes to `path`, replacing the file.
inline void WriteFile(const std::string& path, const uint8_t* data,
                      size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data),
            static_cast<std::streamsize>(size));
  if (!out) {
    std::perror(path.c_str());
    std::abort();
  }
}

// The demo model folder: $TS_MODEL_DIR, else the one of this checkout.
inline std::string DemoModelDir() {
  const char* env = std::getenv("TS_MODEL_DIR");
  return env != nullptr && *env != '\0' ? std::string(env)
                                        : std::string(TS_DEMO_MODEL_DIR);
}

}  // namespace ts::fuzz

#endif  // TRANSFORMER_SERVING_TESTS_FUZZ_FUZZ_UTIL_H_
