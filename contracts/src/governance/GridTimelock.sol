// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title The owner of a Base grid: an OpenZeppelin timelock slower than every exit.
/// @notice Every owner action on the diamond (a cut announcement, a config or randomness source announcement,
/// an audit rate, a pause, a model, an ownership transfer) is first scheduled here, in public, and runs only
/// `getMinDelay()` later. The delay exceeds every exit delay of the diamond (bond unbonding, deposit
/// withdrawal), so whoever dislikes a scheduled action can be out before it runs, and no later
/// `updateDelay` can bring it down to an exit delay or below.
/// @dev Deployed before the diamond (whose constructor names it owner), so it is given the diamond's exit
/// delays rather than reading them. Roles as in TimelockController: proposers schedule (and cancel),
/// executors execute (`address(0)` as executor lets anyone execute), `admin` may grant roles (pass
/// `address(0)`: only the timelock itself, through its own delay, administers roles).
contract GridTimelock is TimelockController {
    /// @notice `minDelay` is not longer than the exit delay `exitDelay` (or no exit delay was given).
    error DelayNotAboveExitDelay(uint256 minDelay, uint256 exitDelay);

    /// @notice The longest of the diamond's exit delays (seconds): `getMinDelay()` always exceeds it.
    uint256 public immutable longestExitDelay;

    /// @param minDelay Seconds between scheduling and execution; must exceed every entry of `exitDelays`.
    /// @param proposers Who may schedule and cancel (the grid's operator: a multisig or an EOA).
    /// @param executors Who may execute ready operations (`address(0)`: anyone).
    /// @param admin Optional extra role admin; `address(0)` for none.
    /// @param exitDelays The diamond's exit delays in seconds: `unbondDelay` and `depositWithdrawDelay`.
    constructor(
        uint256 minDelay,
        address[] memory proposers,
        address[] memory executors,
        address admin,
        uint256[] memory exitDelays
    ) TimelockController(minDelay, proposers, executors, admin) {
        if (exitDelays.length == 0) {
            revert DelayNotAboveExitDelay(minDelay, type(uint256).max);
        }
        uint256 longest;
        for (uint256 i; i < exitDelays.length; ++i) {
            if (exitDelays[i] > longest) longest = exitDelays[i];
        }
        if (minDelay <= longest) revert DelayNotAboveExitDelay(minDelay, longest);
        longestExitDelay = longest;
    }

    /// @notice Changes the delay (only through the timelock itself, like every operation).
    /// @dev Reverts `TimelockUnauthorizedCaller` for any caller but the timelock, `DelayNotAboveExitDelay`
    /// unless `newDelay` still exceeds `longestExitDelay`.
    function updateDelay(uint256 newDelay) public override {
        if (msg.sender != address(this)) revert TimelockUnauthorizedCaller(msg.sender);
        if (newDelay <= longestExitDelay) revert DelayNotAboveExitDelay(newDelay, longestExitDelay);
        super.updateDelay(newDelay);
    }
}
