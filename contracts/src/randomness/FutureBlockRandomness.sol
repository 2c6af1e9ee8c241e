// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IRandomnessSource} from "../interfaces/IAudit.sol";

/// @title Audit randomness from a future block's hash. DEVNET ONLY.
/// @notice A batch settled in block S gets `keccak256(abi.encode(blockhash(S + delay), batchId))`, ready from
/// block S + delay + 1 on. Nobody knows that hash when the batch is settled, so a gateway cannot pick which of
/// its receipts get audited.
/// @dev Not for Base: the block producer of S + delay (the sequencer on Base) knows and can influence its
/// hash, and could withhold or reorder to steer audits. Production needs a source nobody knows in advance (a
/// VRF adapter behind IRandomnessSource).
/// Weakness of the 256-block window: `blockhash` only reaches the last 256 blocks. When nobody fixed the
/// randomness in time, this returns the hash of the newest block that is S + delay plus a multiple of 256 (so
/// still after settlement, and one value for 256 blocks in a row, the same for every caller in that span).
/// Whoever fixes it late can wait for another 256-block step, i.e. choose among a few hashes by timing:
/// a devnet accepts that; keep `fixRandomness` prompt (validators and gateways call it as soon as it is ready).
contract FutureBlockRandomness is IRandomnessSource {
    /// @inheritdoc IRandomnessSource
    /// @dev `ready` is false until block S + delay is sealed, and on a chain that does not serve the hash.
    function randomness(uint256 batchId, uint64 settledBlock, uint64 delay)
        external
        view
        returns (bool ready, bytes32 value)
    {
        uint256 target = uint256(settledBlock) + delay;
        if (block.number <= target) return (false, bytes32(0));
        uint256 source = target;
        if (block.number - target > 256) {
            // Newest target + m·256 below the current block: block.number - 256 <= source <= block.number - 1.
            source = target + (block.number - 1 - target) / 256 * 256;
        }
        bytes32 hash = blockhash(source);
        if (hash == bytes32(0)) return (false, bytes32(0));
        return (true, keccak256(abi.encode(hash, batchId)));
    }
}
