// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title Escrow and settlement storage and logic (ERC-7201 `aipg.storage.Payments`).
/// @dev PLACEHOLDER owned by the payments work: DiamondInit calls `initialize` with exactly this signature.
library LibPayments {
    function initialize(
        uint64 depositWithdrawDelay,
        uint16 workerBps,
        uint16 validatorBps,
        uint16 protocolBps
    ) internal {}
}
