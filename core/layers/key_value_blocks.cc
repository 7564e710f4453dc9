#include "core/layers/key_value_blocks.h"

#include <algorithm>
#include <cassert>

namespace ts::core {

KeyValueBlocks::KeyValueBlocks(int num_layers, int64_t num_heads,
                               int64_t head_dim, int64_t reserve_bytes)
    : num_layers_(num_layers),
      num_heads_(num_heads),
      head_dim_(head_dim),
      block_floats_(num_heads * kBlockSize * head_dim),
      keys_(num_layers),
      values_(num_layers) {
  Grow(std::max<int64_t>(64,
                         reserve_bytes / std::max<int64_t>(1, block_bytes())));
}

void KeyValueBlocks::Grow(int64_t capacity_blocks) {
  // new float[] leaves the memory uninitialized: large allocations are fresh
  // mmap pages that become resident only when a block is first written.
  for (int l = 0; l < num_layers_; ++l) {
    for (auto* storage : {&keys_[l], &values_[l]}) {
      std::unique_ptr<float[]> grown(
          new float[capacity_blocks * block_floats_]);
      if (*storage != nullptr) {
        std::copy_n(storage->get(), next_block_ * block_floats_, grown.get());
      }
      *storage = std::move(grown);
    }
  }
  capacity_blocks_ = capacity_blocks;
}

int KeyValueBlocks::Allocate() {
  int block;
  if (!free_.empty()) {
    block = free_.back();
    free_.pop_back();
  } else {
    if (next_block_ == capacity_blocks_) Grow(2 * capacity_blocks_);
    block = static_cast<int>(next_block_++);
    refs_.push_back(0);
  }
  refs_[block] = 1;
  ++in_use_;
  return block;
}

void KeyValueBlocks::Release(int block) {
  assert(refs_[block] > 0);
  if (--refs_[block] == 0) {
    free_.push_back(block);
    --in_use_;
  }
}

void KeyValueBlocks::CopyPositions(int from, int to, int count) {
  for (int l = 0; l < num_layers_; ++l) {
    for (float* base : {keys_[l].get(), values_[l].get()}) {
      for (int64_t h = 0; h < num_heads_; ++h) {
        const int64_t head = h * kBlockSize * head_dim_;
        std::copy_n(base + from * block_floats_ + head, count * head_dim_,
                    base + to * block_floats_ + head);
      }
    }
  }
}

KeyValueView KeyValueBlocks::View(int layer, const int* table, int64_t stride) {
  KeyValueView view;
  view.keys = keys_[layer].get();
  view.values = values_[layer].get();
  view.table = table;
  view.stride = stride;
  view.block_size = kBlockSize;
  view.num_heads = num_heads_;
  view.head_dim = head_dim_;
  return view;
}

int KeyValueRows::AddRow() {
  rows_.emplace_back();
  return static_cast<int>(rows_.size()) - 1;
}

void KeyValueRows::Reorder(const std::vector<int>& parents) {
  std::vector<Row> rows(parents.size());
  for (size_t i = 0; i < parents.size(); ++i) {
    rows[i] = rows_[parents[i]];
    for (int block : rows[i].blocks) pool_->AddRef(block);
  }
  for (const Row& row : rows_) {
    for (int block : row.blocks) pool_->Release(block);
  }
  rows_ = std::move(rows);
}

void KeyValueRows::Prepare(int len) {
  constexpr int kBlockSize = KeyValueBlocks::kBlockSize;
  for (Row& row : rows_) {
    const int used = row.length % kBlockSize;
    if (used != 0 && pool_->refs(row.blocks.back()) > 1) {
      // Beams that share this partly written block diverge here: copy the
      // written part instead of writing into the shared block.
      const int own = pool_->Allocate();
      pool_->CopyPositions(row.blocks.back(), own, used);
      pool_->Release(row.blocks.back());
      row.blocks.back() = own;
    }
    const size_t needed = (row.length + len + kBlockSize - 1) / kBlockSize;
    while (row.blocks.size() < needed) row.blocks.push_back(pool_->Allocate());
  }
}

void KeyValueRows::Advance(int len) {
  for (Row& row : rows_) row.length += len;
}

int64_t KeyValueRows::FillTable(std::vector<int>* table) const {
  size_t stride = 1;
  for (const Row& row : rows_) stride = std::max(stride, row.blocks.size());
  table->assign(rows_.size() * stride, 0);  // padding entries are never read
  for (size_t n = 0; n < rows_.size(); ++n) {
    std::copy(rows_[n].blocks.begin(), rows_[n].blocks.end(),
              table->begin() + n * stride);
  }
  return static_cast<int64_t>(stride);
}

}  // namespace ts::core
