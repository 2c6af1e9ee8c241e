// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @dev PLACEHOLDER owned by the payments work: implements IPayments.
contract PaymentsFacet {}
