// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test} from "forge-std/Test.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {TestAIPG} from "../../src/token/TestAIPG.sol";

/// @notice The devnet token: metadata, owner-only mint, ERC-2612 permit.
contract TestAIPGTest is Test {
    TestAIPG internal token;
    address internal minter = makeAddr("minter");

    function setUp() public {
        token = new TestAIPG(minter);
    }

    function test_metadata() public view {
        assertEq(token.name(), "AIPG Test Token");
        assertEq(token.symbol(), "AIPG");
        assertEq(token.decimals(), 18);
        assertEq(token.owner(), minter);
        assertEq(token.totalSupply(), 0);
    }

    function test_mint_byOwner() public {
        vm.prank(minter);
        token.mint(address(this), 5e18);
        assertEq(token.balanceOf(address(this)), 5e18);
        assertEq(token.totalSupply(), 5e18);
    }

    function test_mint_revertsWhenNotOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, address(this)));
        token.mint(address(this), 1);
    }

    function test_permit_setsAllowance() public {
        (address holder, uint256 key) = makeAddrAndKey("holder");
        address spender = makeAddr("spender");
        uint256 deadline = block.timestamp + 1 hours;
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256(
                    "Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"
                ),
                holder,
                spender,
                1e18,
                token.nonces(holder),
                deadline
            )
        );
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        token.permit(holder, spender, 1e18, deadline, v, r, s);
        assertEq(token.allowance(holder, spender), 1e18);
        assertEq(token.nonces(holder), 1);
    }
}
