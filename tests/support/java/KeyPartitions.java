import java.util.HexFormat;
import java.util.Scanner;

import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;

/** The partition Apache Kafka's Java producer gives each key (one hex line each on stdin). */
public class KeyPartitions {
    public static void main(String[] args) {
        int partitions = Integer.parseInt(args[0]);
        Scanner in = new Scanner(System.in);
        while (in.hasNextLine()) {
            byte[] key = HexFormat.of().parseHex(in.nextLine().trim());
            System.out.println(BuiltInPartitioner.partitionForKey(key, partitions));
        }
    }
}
