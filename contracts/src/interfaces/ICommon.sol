// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title Errors more than one facet throws.
interface ICommon {
    error ZeroAmount();
    error ZeroAddress();
}
