// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ICutTimelock} from "../interfaces/ICutTimelock.sol";

/// @title Announce-then-wait for every change that could touch someone's funds (ERC-7201
/// `aipg.storage.Timelock`): diamond cuts, audit configs, randomness sources.
/// @notice A change is known by an id (the hash of its full content, tagged by kind). It may run from
/// `announcedAt + delay` until `announcedAt + delay + window`, once; then it lapses.
library LibTimelock {
    /// @custom:storage-location erc7201:aipg.storage.Timelock
    /// @dev Append-only: add new fields at the end.
    struct Layout {
        uint64 delay; // = cutDelay, > every exit delay + the reaction margin (checked by DiamondInit)
        uint64 window; // how long a matured change stays executable
        mapping(bytes32 id => uint64 executableAt) executableAt; // 0 = not pending
    }

    // keccak256(abi.encode(uint256(keccak256("aipg.storage.Timelock")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 internal constant STORAGE_SLOT =
        0x291dc81153c689e01366434542844458e493a6a700cca8149e5c298fd9a42c00;

    function layout() internal pure returns (Layout storage l) {
        bytes32 slot = STORAGE_SLOT;
        assembly {
            l.slot := slot
        }
    }

    function configure(uint64 delay, uint64 window) internal {
        Layout storage l = layout();
        l.delay = delay;
        l.window = window;
    }

    /// @dev Schedules `id` (announcing it again restarts its delay). The caller emits the content.
    function announce(bytes32 id) internal returns (uint64 executableAt, uint64 expiresAt) {
        Layout storage l = layout();
        executableAt = uint64(block.timestamp) + l.delay;
        expiresAt = executableAt + l.window;
        l.executableAt[id] = executableAt;
    }

    /// @dev Consumes a matured, unexpired announcement of `id` (emits `ChangeExecuted`); reverts otherwise.
    function consume(bytes32 id) internal {
        Layout storage l = layout();
        uint64 executableAt = l.executableAt[id];
        if (executableAt == 0) revert ICutTimelock.ChangeNotAnnounced(id);
        // Delays are days long on Base; seconds of proposer drift do not matter.
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp < executableAt) revert ICutTimelock.ChangeNotReady(id, executableAt);
        uint64 expiresAt = executableAt + l.window;
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp > expiresAt) revert ICutTimelock.ChangeExpired(id, expiresAt);
        delete l.executableAt[id];
        emit ICutTimelock.ChangeExecuted(id);
    }

    function cancel(bytes32 id) internal {
        Layout storage l = layout();
        if (l.executableAt[id] == 0) revert ICutTimelock.ChangeNotAnnounced(id);
        delete l.executableAt[id];
        emit ICutTimelock.ChangeCancelled(id);
    }

    function pending(bytes32 id) internal view returns (uint64 executableAt, uint64 expiresAt) {
        Layout storage l = layout();
        executableAt = l.executableAt[id];
        if (executableAt != 0) expiresAt = executableAt + l.window;
    }
}
