// The decoder's attention keys/values in fixed-size blocks, as vLLM's paged
// KV cache: a row holds a table of block ids that grows one block per
// kBlockSize positions, so memory follows the tokens decoded, not
// max_length. Beams share their common history by reference count and copy
// only a partially written last block when they diverge (copy-on-write).
#ifndef TRANSFORMER_SERVING_CORE_LAYERS_KEY_VALUE_BLOCKS_H_
#define TRANSFORMER_SERVING_CORE_LAYERS_KEY_VALUE_BLOCKS_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "core/layers/multi_head_attention.h"

namespace ts::core {

// A pool of blocks for `num_layers` attention layers. Block b of layer l
// holds keys and values of kBlockSize positions, each [num_heads, kBlockSize,
// head_dim]; all layers use the same block ids, so a row has one table.
// Not thread-safe: one pool per Translator (per worker).
class KeyValueBlocks {
 public:
  static constexpr int kBlockSize = 16;  // positions per block

  // `reserve_bytes`: address space taken up front (not touched, so not
  // resident) so that growth up to it never moves the storage.
  KeyValueBlocks(int num_layers, int64_t num_heads, int64_t head_dim,
                 int64_t reserve_bytes = 0);

  // A free block with reference count 1. The pool grows as needed: a limit
  // (--kv_cache_mb) is the caller's admission policy (bytes_in_use).
  int Allocate();
  void AddRef(int block) { ++refs_[block]; }
  // Drops one reference; the block is free at 0.
  void Release(int block);
  int refs(int block) const { return refs_[block]; }

  // Copies positions [0, count) of block `from` into block `to`, every layer.
  void CopyPositions(int from, int to, int count);

  // Layer `layer`'s storage addressed through `table` [rows, stride] (block
  // ids of each row's positions), valid until the next Allocate.
  KeyValueView View(int layer, const int* table, int64_t stride);

  // Bytes of one block over all layers, keys and values.
  int64_t block_bytes() const { return 2 * num_layers_ * block_floats_ * 4; }
  int64_t blocks_in_use() const { return in_use_; }
  int64_t bytes_in_use() const { return in_use_ * block_bytes(); }
  // Blocks ever allocated at once (the storage's touched part).
  int64_t high_water_blocks() const { return next_block_; }

 private:
  void Grow(int64_t capacity_blocks);

  const int num_layers_;
  const int64_t num_heads_;
  const int64_t head_dim_;
  const int64_t block_floats_;  // num_heads * kBlockSize * head_dim
  int64_t capacity_blocks_ = 0;
  // keys_[l] and values_[l]: [capacity_blocks, num_heads, kBlockSize,
  // head_dim], allocated uninitialized so untouched pages stay virtual.
  std::vector<std::unique_ptr<float[]>> keys_;
  std::vector<std::unique_ptr<float[]>> values_;
  std::vector<int> refs_;  // [next_block_]
  std::vector<int> free_;  // released block ids, reused last-in first-out
  int64_t next_block_ = 0;
  int64_t in_use_ = 0;
};

// The block lists of decoder rows over a pool: row n's positions [0,
// length(n)) are in blocks(n). Rows share blocks after a Reorder (beams of
// one source); Prepare gives each row private blocks for the positions it
// writes next.
class KeyValueRows {
 public:
  explicit KeyValueRows(KeyValueBlocks* pool) : pool_(pool) {}
  // Returns every block to the pool.
  ~KeyValueRows() { Reorder({}); }

  KeyValueRows(const KeyValueRows&) = delete;
  KeyValueRows& operator=(const KeyValueRows&) = delete;

  // Appends an empty row (length 0); returns its index.
  int AddRow();
  // Row i becomes old row parents[i] (sharing its blocks); rows not named
  // give their blocks back.
  void Reorder(const std::vector<int>& parents);
  // Makes positions [length(n), length(n) + len) of every row writable by
  // that row alone: a new block at a block boundary, a private copy of a
  // shared, partly written last block (copy-on-write).
  void Prepare(int len);
  // Every row now holds `len` more positions (after they were written).
  void Advance(int len);
  // The rows' blocks as a dense [rows, stride] table; returns stride.
  int64_t FillTable(std::vector<int>* table) const;

  int rows() const { return static_cast<int>(rows_.size()); }
  int length(int n) const { return rows_[n].length; }
  const std::vector<int>& blocks(int n) const { return rows_[n].blocks; }

 private:
  struct Row {
    std::vector<int> blocks;
    int length = 0;
  };
  KeyValueBlocks* pool_;
  std::vector<Row> rows_;
};

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_LAYERS_KEY_VALUE_BLOCKS_H_
