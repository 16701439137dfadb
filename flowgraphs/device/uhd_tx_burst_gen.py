#!/usr/bin/env python3
# -*- coding: utf-8 -*-

#
# SPDX-License-Identifier: GPL-3.0
#
# GNU Radio Python Flow Graph
# Title: gsc device TX (bursts): tagged ZeroMQ IQ -> USRP burst mode
# Author: gsc
# Description: Modem TX IQ with length tags (PULL from zmq_endpoint, tags passed) into a USRP sink in burst mode (len_tag_key, e.g. packet_len): the radio idles between bursts.
# GNU Radio version: 3.10.5.1

from gnuradio import blocks
from gnuradio import gr
from gnuradio.filter import firdes
from gnuradio.fft import window
import sys
import signal
from argparse import ArgumentParser
from gnuradio.eng_arg import eng_float, intx
from gnuradio import eng_notation
from gnuradio import uhd
import time
from gnuradio import zeromq




class uhd_tx_burst(gr.top_block):

    def __init__(self, dev_args="type=b200", clock_source="internal", time_source="internal", samp_rate=2.16e6, center_freq=2.45e9, gain=50, antenna="TX/RX", bandwidth=0, tx_scale=0.25, len_tag_key="packet_len", zmq_endpoint="tcp://127.0.0.1:5710"):
        gr.top_block.__init__(self, "gsc device TX (bursts): tagged ZeroMQ IQ -> USRP burst mode", catch_exceptions=True)

        ##################################################
        # Parameters
        ##################################################
        self.dev_args = dev_args
        self.clock_source = clock_source
        self.time_source = time_source
        self.samp_rate = samp_rate
        self.center_freq = center_freq
        self.gain = gain
        self.antenna = antenna
        self.bandwidth = bandwidth
        self.tx_scale = tx_scale
        self.len_tag_key = len_tag_key
        self.zmq_endpoint = zmq_endpoint

        ##################################################
        # Blocks
        ##################################################

        self.zmq_source = zeromq.pull_source(gr.sizeof_gr_complex, 1, zmq_endpoint, 100, True, (-1))
        self.usrp_sink = uhd.usrp_sink(
            ",".join((dev_args, '')),
            uhd.stream_args(
                cpu_format="fc32",
                args='',
                channels=list(range(0,1)),
            ),
            len_tag_key,
        )
        self.usrp_sink.set_clock_source(clock_source, 0)
        self.usrp_sink.set_time_source(time_source, 0)
        self.usrp_sink.set_samp_rate(samp_rate)
        # No synchronization enforced.

        self.usrp_sink.set_center_freq(center_freq, 0)
        self.usrp_sink.set_antenna(antenna, 0)
        self.usrp_sink.set_gain(gain, 0)
        self.tx_backoff = blocks.multiply_const_cc(tx_scale)


        ##################################################
        # Connections
        ##################################################
        self.connect((self.tx_backoff, 0), (self.usrp_sink, 0))
        self.connect((self.zmq_source, 0), (self.tx_backoff, 0))


    def get_dev_args(self):
        return self.dev_args

    def set_dev_args(self, dev_args):
        self.dev_args = dev_args

    def get_clock_source(self):
        return self.clock_source

    def set_clock_source(self, clock_source):
        self.clock_source = clock_source

    def get_time_source(self):
        return self.time_source

    def set_time_source(self, time_source):
        self.time_source = time_source

    def get_samp_rate(self):
        return self.samp_rate

    def set_samp_rate(self, samp_rate):
        self.samp_rate = samp_rate
        self.usrp_sink.set_samp_rate(self.samp_rate)

    def get_center_freq(self):
        return self.center_freq

    def set_center_freq(self, center_freq):
        self.center_freq = center_freq
        self.usrp_sink.set_center_freq(self.center_freq, 0)

    def get_gain(self):
        return self.gain

    def set_gain(self, gain):
        self.gain = gain
        self.usrp_sink.set_gain(self.gain, 0)

    def get_antenna(self):
        return self.antenna

    def set_antenna(self, antenna):
        self.antenna = antenna
        self.usrp_sink.set_antenna(self.antenna, 0)

    def get_bandwidth(self):
        return self.bandwidth

    def set_bandwidth(self, bandwidth):
        self.bandwidth = bandwidth
        self.usrp_sink.set_bandwidth(self.bandwidth, 0)

    def get_tx_scale(self):
        return self.tx_scale

    def set_tx_scale(self, tx_scale):
        self.tx_scale = tx_scale
        self.tx_backoff.set_k(self.tx_scale)

    def get_len_tag_key(self):
        return self.len_tag_key

    def set_len_tag_key(self, len_tag_key):
        self.len_tag_key = len_tag_key

    def get_zmq_endpoint(self):
        return self.zmq_endpoint

    def set_zmq_endpoint(self, zmq_endpoint):
        self.zmq_endpoint = zmq_endpoint



def argument_parser():
    description = 'Modem TX IQ with length tags (PULL from zmq_endpoint, tags passed) into a USRP sink in burst mode (len_tag_key, e.g. packet_len): the radio idles between bursts.'
    parser = ArgumentParser(description=description)
    parser.add_argument(
        "--dev-args", dest="dev_args", type=str, default="type=b200",
        help="Set UHD device args [default=%(default)r]")
    parser.add_argument(
        "--clock-source", dest="clock_source", type=str, default="internal",
        help="Set Clock source [default=%(default)r]")
    parser.add_argument(
        "--time-source", dest="time_source", type=str, default="internal",
        help="Set Time source [default=%(default)r]")
    parser.add_argument(
        "--samp-rate", dest="samp_rate", type=eng_float, default=eng_notation.num_to_str(float(2.16e6)),
        help="Set Sample rate (S/s) [default=%(default)r]")
    parser.add_argument(
        "--center-freq", dest="center_freq", type=eng_float, default=eng_notation.num_to_str(float(2.45e9)),
        help="Set Centre frequency (Hz) [default=%(default)r]")
    parser.add_argument(
        "--gain", dest="gain", type=eng_float, default=eng_notation.num_to_str(float(50)),
        help="Set TX gain (dB) [default=%(default)r]")
    parser.add_argument(
        "--antenna", dest="antenna", type=str, default="TX/RX",
        help="Set TX antenna [default=%(default)r]")
    parser.add_argument(
        "--bandwidth", dest="bandwidth", type=eng_float, default=eng_notation.num_to_str(float(0)),
        help="Set TX analog bandwidth (Hz, 0 = default) [default=%(default)r]")
    parser.add_argument(
        "--tx-scale", dest="tx_scale", type=eng_float, default=eng_notation.num_to_str(float(0.25)),
        help="Set Amplitude scale (back-off) [default=%(default)r]")
    parser.add_argument(
        "--len-tag-key", dest="len_tag_key", type=str, default="packet_len",
        help="Set Burst length tag [default=%(default)r]")
    parser.add_argument(
        "--zmq-endpoint", dest="zmq_endpoint", type=str, default="tcp://127.0.0.1:5710",
        help="Set Modem TX IQ endpoint [default=%(default)r]")
    return parser


def main(top_block_cls=uhd_tx_burst, options=None):
    if options is None:
        options = argument_parser().parse_args()
    tb = top_block_cls(dev_args=options.dev_args, clock_source=options.clock_source, time_source=options.time_source, samp_rate=options.samp_rate, center_freq=options.center_freq, gain=options.gain, antenna=options.antenna, bandwidth=options.bandwidth, tx_scale=options.tx_scale, len_tag_key=options.len_tag_key, zmq_endpoint=options.zmq_endpoint)

    def sig_handler(sig=None, frame=None):
        tb.stop()
        tb.wait()

        sys.exit(0)

    signal.signal(signal.SIGINT, sig_handler)
    signal.signal(signal.SIGTERM, sig_handler)

    tb.start()

    tb.wait()


if __name__ == '__main__':
    main()
