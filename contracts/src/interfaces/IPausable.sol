// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title Emergency pause. Pausing stops new bonds, deposits and settlements; it never stops a withdrawal.
interface IPausable {
    event Paused(address account);
    event Unpaused(address account);

    error EnforcedPause();
    error ExpectedPause();

    function pause() external;
    function unpause() external;
    function paused() external view returns (bool);
}
