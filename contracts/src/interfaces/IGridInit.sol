// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IAudit} from "./IAudit.sol";

/// @title Deployment parameters, passed once to DiamondInit.init through the constructor's cut.
interface IGridInit {
    struct InitArgs {
        address token; // AIPG (the test token on devnets, the real token on Base)
        address treasury; // receives protocol fees
        uint256 workerMinimumBond; // 1_000e18
        uint256 validatorMinimumBond; // 10_000e18
        uint64 unbondDelay; // 7 days on Base, seconds on a devnet
        uint64 depositWithdrawDelay; // delay on escrow withdrawals
        uint64 cutDelay; // announce-to-execute delay on upgrades and rule changes: >= both delays above + margin
        uint64 changeWindow; // how long a matured announcement stays executable (0 < window <= cutDelay)
        uint16 workerBps; // split of each worker's gross; the three sum to 10,000
        uint16 validatorBps;
        uint16 protocolBps;
        uint16 confidentialPremiumBps;
        IAudit.AuditConfig audit; // random audits: rate, k, quorum, windows, delay, slashes, finder share, reward
        IAudit.AuditLimits auditLimits; // bounds on every audit config, for the diamond's lifetime
        address randomnessSource; // IRandomnessSource (FutureBlockRandomness on a devnet, a VRF adapter on Base)
    }

    error InvalidInit(string reason);

    function init(InitArgs calldata args) external;
}
