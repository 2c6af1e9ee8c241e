// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IAudit} from "../../src/interfaces/IAudit.sol";
import {IPayments} from "../../src/interfaces/IPayments.sol";
import {SecurityFixture} from "./SecurityFixture.sol";

/// @notice Threat model of contracts/README.md, attack 6: a gateway, a worker and every seated validator, all
/// one farmer, settle tiny batches and vote PASS on every receipt to drain the validator pool. PASS rewards
/// come only out of what the audited batch itself paid into the validator share, so the farmer gets back at
/// most a part of its own fee.
contract RewardFarmingTest is SecurityFixture {
    function _validatorEarnings() internal view returns (uint256) {
        return grid.earningsOf(v1) + grid.earningsOf(v2) + grid.earningsOf(v3);
    }

    /// @dev n receipts of fee `fee`, settled, fixed, every seat PASS on every receipt, finalized.
    function _farm(uint256 n, uint256 fee) internal returns (uint256 batchId, uint256 share) {
        IAudit.Receipt[] memory rs = _receipts(worker, n);
        for (uint256 i; i < n; ++i) {
            rs[i].fee = fee;
            share += fee * VALIDATOR_BPS / 10_000;
        }
        batchId = _settle(rs);
        assertEq(grid.getBatch(batchId).rewardLeft, share);
        _fix(batchId);
        for (uint256 i; i < n; ++i) {
            address[] memory seats = grid.assignedValidators(batchId, _leaf(rs[i]));
            for (uint256 s; s < seats.length; ++s) {
                _commit(seats[s], batchId, rs, i, IAudit.Vote.Pass);
            }
        }
        _toReveal(batchId);
        for (uint256 i; i < n; ++i) {
            address[] memory seats = grid.assignedValidators(batchId, _leaf(rs[i]));
            for (uint256 s; s < seats.length; ++s) {
                _reveal(seats[s], rs[i], IAudit.Vote.Pass);
            }
        }
        _closeWindow(batchId);
        for (uint256 i; i < n; ++i) {
            grid.finalize(_leaf(rs[i]));
            assertEq(uint8(grid.getAudit(_leaf(rs[i])).verdict), uint8(IAudit.Verdict.Pass));
        }
    }

    /// A big honest batch filled the pool first; the farmer's PASS votes on its own tiny batch (fuzzed fee
    /// and size) earn at most that batch's validator share, and the rest of the pool stays.
    function testFuzz_passFarming_rewardsNeverExceedTheBatchShare(uint256 fee, uint8 n) public {
        n = uint8(bound(n, 1, 4));
        fee = bound(fee, 1, 2e18);
        // honest traffic: 1,000 AIPG settled, 150 AIPG into the pool (not audited by the farmer)
        IAudit.Receipt[] memory honest = _receipts(worker, 1);
        honest[0].fee = 1_000e18;
        _settle(honest);
        uint256 poolBefore = grid.validatorPool();

        (uint256 batchId, uint256 share) = _farm(n, fee);
        uint256 rewards = _validatorEarnings();
        assertLe(rewards, share, "rewards above what the batch paid");
        assertEq(grid.getBatch(batchId).rewardLeft, share - rewards);
        // the pool only lost what the farmer's batch put in
        assertGe(grid.validatorPool(), poolBefore);
        assertEq(grid.validatorPool(), poolBefore + share - rewards);
        // and farming costs: the farmer paid n * fee for at most n * fee * 15% back
        assertLt(rewards, n * fee);
    }

    /// One wei: the validator share rounds to 0, so every PASS earns 0.
    function test_passFarming_oneWeiBatch_paysNoReward() public {
        _settle(_receipts(worker, 1)); // a pool to aim at
        (, uint256 share) = _farm(1, 1);
        assertEq(share, 0);
        assertEq(_validatorEarnings(), 0);
    }

    /// Many farmed batches in a row: the total paid never exceeds the sum of their validator shares.
    function testFuzz_passFarming_totalRewardsBoundedBySumOfShares(uint256[3] memory fees) public {
        IAudit.Receipt[] memory honest = _receipts(worker, 1);
        honest[0].fee = 10_000e18;
        _settle(honest);
        uint256 shares;
        for (uint256 i; i < fees.length; ++i) {
            (, uint256 share) = _farm(2, bound(fees[i], 1, 1e18));
            shares += share;
            assertLe(_validatorEarnings(), shares);
        }
    }
}
