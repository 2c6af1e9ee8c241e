// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IAudit} from "../../src/interfaces/IAudit.sol";

/// @notice Small Merkle trees of receipts for tests, with proofs that OpenZeppelin's MerkleProof accepts
/// (sorted-pair keccak256; an odd node at the end of a level moves up unchanged). Leaves are the same
/// double-hashed standard-tree leaves as `IAudit.receiptLeaf`.
library ReceiptTree {
    function leaf(IAudit.Receipt memory receipt) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(receipt))));
    }

    function leaves(IAudit.Receipt[] memory receipts) internal pure returns (bytes32[] memory out) {
        out = new bytes32[](receipts.length);
        for (uint256 i; i < receipts.length; ++i) {
            out[i] = leaf(receipts[i]);
        }
    }

    function root(bytes32[] memory nodes) internal pure returns (bytes32) {
        bytes32[] memory level = nodes;
        while (level.length > 1) {
            level = _up(level);
        }
        return level[0];
    }

    function proof(bytes32[] memory nodes, uint256 index) internal pure returns (bytes32[] memory p) {
        bytes32[] memory buffer = new bytes32[](256);
        uint256 n;
        bytes32[] memory level = nodes;
        while (level.length > 1) {
            uint256 sibling = index ^ 1;
            if (sibling < level.length) buffer[n++] = level[sibling];
            level = _up(level);
            index /= 2;
        }
        p = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            p[i] = buffer[i];
        }
    }

    function _up(bytes32[] memory level) private pure returns (bytes32[] memory next) {
        next = new bytes32[]((level.length + 1) / 2);
        for (uint256 i; i < next.length; ++i) {
            next[i] = 2 * i + 1 < level.length ? _pair(level[2 * i], level[2 * i + 1]) : level[2 * i];
        }
    }

    function _pair(bytes32 a, bytes32 b) private pure returns (bytes32) {
        return a < b ? keccak256(abi.encode(a, b)) : keccak256(abi.encode(b, a));
    }
}
