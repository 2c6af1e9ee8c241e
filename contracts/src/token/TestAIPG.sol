// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title AIPG stand-in for devnets and tests (18 decimals, ERC-2612 permit). Never deployed on Base.
contract TestAIPG is ERC20, ERC20Permit, Ownable {
    /// @param initialOwner The only address that can mint.
    constructor(address initialOwner)
        ERC20("AIPG Test Token", "AIPG")
        ERC20Permit("AIPG Test Token")
        Ownable(initialOwner)
    {}

    /// @notice Mints `amount` to `to`. Owner only.
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
