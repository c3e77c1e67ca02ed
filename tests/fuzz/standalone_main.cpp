// Standalone driver for tern's fuzz targets, so they run in `make check`
// without a libFuzzer toolchain.  Each target defines LLVMFuzzerTestOneInput
// (the same file also links against libFuzzer: clang -fsanitize=fuzzer).
//
//   <target> [--iterations N] [--seconds S] [corpus-dir-or-file ...]
//
// Runs every corpus file, then N inputs mutated from the corpus (or random
// when there is none), stopping after S seconds.  Deterministic seed.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::vector<std::string> load_corpus(const std::vector<std::string>& paths) {
    std::vector<std::string> corpus;
    for (const auto& p : paths) {
        std::vector<std::filesystem::path> files;
        if (std::filesystem::is_directory(p)) {
            for (const auto& e : std::filesystem::directory_iterator(p))
                if (e.is_regular_file()) files.push_back(e.path());
        } else {
            files.emplace_back(p);
        }
        for (const auto& f : files) {
            std::ifstream in(f, std::ios::binary);
            corpus.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        }
    }
    return corpus;
}

std::string mutate(std::string s, std::mt19937& rng) {
    static const char* tokens[] = {"\r\n", "\n", "\r", ".", "\r\n.\r\n", "\0", "<", ">", ":", "=",
                                   "\"", "\\", "(", ")", "{", "}", " ", "\xff", "\xc3\xa9"};
    int edits = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < edits; ++i) {
        size_t pos = s.empty() ? 0 : rng() % (s.size() + 1);
        switch (rng() % 5) {
        case 0: if (!s.empty() && pos < s.size()) s[pos] = static_cast<char>(rng()); break;
        case 1: if (!s.empty() && pos < s.size()) s.erase(pos, 1 + rng() % 16); break;
        case 2: s.insert(pos, tokens[rng() % std::size(tokens)]); break;
        case 3: if (!s.empty()) { size_t from = rng() % s.size(); s.insert(pos, s.substr(from, rng() % 32)); } break;
        default: s.insert(pos, 1, static_cast<char>(rng())); break;
        }
    }
    if (s.size() > 65536) s.resize(65536);
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    long iterations = 10000;
    double seconds = 10;
    std::vector<std::string> paths;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--iterations") && i + 1 < argc) iterations = std::atol(argv[++i]);
        else if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = std::atof(argv[++i]);
        else paths.emplace_back(argv[i]);
    }
    auto corpus = load_corpus(paths);
    for (const auto& c : corpus) LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(c.data()), c.size());
    std::mt19937 rng(12345);
    auto start = std::chrono::steady_clock::now();
    long done = 0;
    for (; done < iterations; ++done) {
        std::string input;
        if (!corpus.empty()) input = mutate(corpus[rng() % corpus.size()], rng);
        else { input.resize(rng() % 512); for (auto& ch : input) ch = static_cast<char>(rng()); }
        LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
        if ((done & 255) == 0 &&
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > seconds)
            break;
    }
    std::cout << argv[0] << ": " << corpus.size() << " corpus inputs, " << done << " mutated inputs, ok\n";
    return 0;
}
