-- rserpool-tcp.lua — frames ASAP and ENRP messages on TCP (and MPTCP) streams for Wireshark.
--
-- ASAP and ENRP messages carry their length in their 4-byte common header
-- (type u8 | flags u8 | length u16), followed by padding to a multiple of 4. Wireshark's own
-- dissectors expect one message per packet (as over SCTP); this plugin cuts a TCP stream
-- into messages by that length, reassembling across segments and splitting several
-- messages in one segment, and hands each to Wireshark's ASAP or ENRP dissector.
--
-- Use:   tshark -X lua_script:tools/wireshark/rserpool-tcp.lua -r capture.pcapng
--        (ports 3863 = ASAP and 9901 = ENRP by default; for others:
--         -d tcp.port==4000,asaptcp   or   -d tcp.port==4001,enrptcp)
-- Or copy it to ~/.local/lib/wireshark/plugins/ for the GUI.

-- Wireshark registers its ASAP and ENRP dissectors under their SCTP payload protocol
-- identifiers (ASAP 11, ENRP 12), not by name.
local sctp_ppi = DissectorTable.get("sctp.ppi")
local asap_dissector = sctp_ppi:get_dissector(11)
local enrp_dissector = sctp_ppi:get_dissector(12)
assert(asap_dissector and enrp_dissector, "rserpool-tcp.lua: this Wireshark has no ASAP/ENRP dissector")

local HEADER_LENGTH = 4

local function padded_message_length(tvb, pinfo, offset)
    local length = tvb(offset + 2, 2):uint()
    if length < HEADER_LENGTH then
        -- Not a valid message: consume the rest so that the stream is not looped over.
        return tvb:len() - offset
    end
    return length + ((4 - length % 4) % 4)
end

local function make_framer(name, description, inner)
    local proto = Proto(name, description)
    local function dissect_one(tvb, pinfo, tree)
        inner:call(tvb, pinfo, tree)
        return tvb:len()
    end
    function proto.dissector(tvb, pinfo, tree)
        dissect_tcp_pdus(tvb, tree, HEADER_LENGTH, padded_message_length, dissect_one, true)
        return tvb:len()
    end
    return proto
end

local asap_over_tcp = make_framer("asaptcp", "ASAP over TCP (RSerPool framing)", asap_dissector)
local enrp_over_tcp = make_framer("enrptcp", "ENRP over TCP (RSerPool framing)", enrp_dissector)

local tcp_ports = DissectorTable.get("tcp.port")
tcp_ports:add(3863, asap_over_tcp)
tcp_ports:add(9901, enrp_over_tcp)

-- Inside TLS (ASAP/TLS on 3864 and ENRP/TLS on 9902 by convention): the same framing of the
-- decrypted stream. Wireshark decrypts with the key log EdgePool's daemons write to
-- SSLKEYLOGFILE:  tshark -X lua_script:… -o tls.keylog_file:keys.log -r capture.pcapng
-- (other ports: -d tcp.port==4000,tls -d tls.port==4000,asaptcp)
local tls_dissector = Dissector.get("tls")
tcp_ports:add(3864, tls_dissector)
tcp_ports:add(9902, tls_dissector)
local tls_ports = DissectorTable.get("tls.port")
tls_ports:add(3864, asap_over_tcp)
tls_ports:add(9902, enrp_over_tcp)
